"""Code versions that follow calls, tested as users meet them: module files edited between
runs, each run a new process, executions counted by the lines the tasks append to a log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cascade_test_cli import FLOW_HEAD

import cascade_core as cs
from cascade_core._build.code_version import follow

DEEP = """
FACTOR = 3


def deep(x):
    return x * FACTOR
"""

MID = '''
import deep_helpers


def mid(x):
    """Adds one to the deep value."""
    total = deep_helpers.deep(x)
    return total + 1
'''

FLOW = (
    FLOW_HEAD
    + """
from mid_helpers import mid


@cs.task(cache=True)
def step(x):
    note("step")
    return mid(x)


@cs.task(cache=True)
def down(y):
    note("down")
    return y * 2


@cs.task(cache=True)
def libbed(x):
    note("libbed")
    import fakelib

    return fakelib.scale(x)


@cs.task(cache=True)
def plain(x):
    note("plain")
    return x - 1


def pipeline():
    return [down(step(2)), plain(5)]


def with_library():
    return [libbed(1), plain(5)]
"""
)

RUN = """
import sys

sys.path[:0] = [{here!r}, {site!r}]
import flow

target = getattr(flow, sys.argv[1])()
print(__import__("cascade_core").run(target, cache_backend={cache!r}))
"""


class Project:
    """Module files in a folder, run in a fresh process each time, as a user runs them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "calls.log"
        self.site = root / "lib" / "site-packages"  # where an installed distribution lives
        self.site.mkdir(parents=True)
        self.write("deep_helpers.py", DEEP)
        self.write("mid_helpers.py", MID)
        self.write("flow.py", FLOW)
        cache = f"sqlite:///{root / 'cache.db'}"
        (root / "run.py").write_text(RUN.format(here=str(root), site=str(self.site), cache=cache))

    def write(self, name: str, text: str) -> None:
        (self.root / name).write_text(textwrap.dedent(text))

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text()
        assert old in text, f"{old!r} is not in {name}"
        path.write_text(text.replace(old, new))

    def install(self, version: str) -> None:
        """``fakelib`` installed as a distribution of this version (the same code)."""
        package = self.site / "fakelib"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text("def scale(x):\n    return x * 10\n")
        for old in self.site.glob("fakelib-*.dist-info"):
            for file in old.iterdir():
                file.unlink()
            old.rmdir()
        info = self.site / f"fakelib-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakelib\nVersion: {version}\n")

    def run(self, target: str = "pipeline") -> list[str]:
        """Run ``flow.<target>()`` in a new process; the tasks that executed, sorted."""
        self.log.write_text("")
        env = {**os.environ, "FLOW_LOG": str(self.log)}
        done = subprocess.run(
            [sys.executable, str(self.root / "run.py"), target], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return sorted(self.log.read_text().split())


@pytest.fixture
def project(tmp_path: Path) -> Project:
    made = Project(tmp_path)
    assert made.run() == ["down", "plain", "step"]  # cold
    return made


def test_editing_a_helper_two_calls_deep_reruns_the_task_and_its_downstream(project):
    project.edit("deep_helpers.py", "return x * FACTOR", "return x * FACTOR + 1")
    assert project.run() == ["down", "step"]
    assert project.run() == []


def test_a_module_constant_a_helper_reads_is_part_of_the_version(project):
    project.edit("deep_helpers.py", "FACTOR = 3", "FACTOR = 4")
    assert project.run() == ["down", "step"]


def test_comments_docstrings_and_blank_lines_rerun_nothing(project):
    project.edit("deep_helpers.py", "def deep(x):\n", "\n\ndef deep(x):  # the deep one\n    '''Doc.'''\n\n")
    project.edit("mid_helpers.py", '"""Adds one to the deep value."""', '"""Adds one.\n\n    More words.\n    """')
    project.edit("mid_helpers.py", "    return total + 1", "    # one more\n\n    return (total +\n            1)")
    project.edit("flow.py", '    note("step")\n', '    """A docstring now."""\n    note("step")  # logged\n\n')
    assert project.run() == []


def test_renaming_a_local_variable_reruns(project):
    project.edit("mid_helpers.py", "total = deep_helpers.deep(x)", "t = deep_helpers.deep(x)")
    project.edit("mid_helpers.py", "return total + 1", "return t + 1")
    assert project.run() == ["down", "step"]


def test_a_new_version_of_an_installed_library_reruns_the_tasks_that_import_it(tmp_path):
    project = Project(tmp_path)
    project.install("1.0")
    assert project.run("with_library") == ["libbed", "plain"]
    assert project.run("with_library") == []
    project.install("2.0")  # the same code, another version
    assert project.run("with_library") == ["libbed"]


def _module(tmp_path: Path, name: str, source: str) -> object:
    """Import ``source`` as module ``name`` from ``tmp_path`` (this process)."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_cycles_methods_local_imports_and_closures_are_followed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _module(tmp_path, "cv_other", "def far(x):\n    return x\n")
    module = _module(
        tmp_path,
        "cv_cycle",
        """
        import functools

        @functools.lru_cache
        def memo(x):
            return x

        class Shape:
            def area(self):
                return helper(self)

        def helper(shape):
            return ping(1)

        def ping(n):
            return pong(n - 1) if n else 0

        def pong(n):
            return ping(n)

        def make():
            inner = ping
            def task_fn(x):
                from cv_other import far
                return Shape().area() + inner(x) + far(x) + memo(x)
            return task_fn
        """,
    )
    code = follow(module.make(), "cv_cycle.task")
    reached = {"cv_cycle.Shape", "cv_cycle.Shape.area", "cv_cycle.helper", "cv_cycle.ping", "cv_cycle.pong"}
    reached.add("cv_cycle.memo")
    assert reached <= set(code.units)
    assert "cv_other.far" in code.units
    assert code.unresolved == ()


def test_unresolvable_callees_are_named_in_one_warning_per_task(tmp_path, monkeypatch, caplog):
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _module(
        tmp_path,
        "cv_missing",
        """
        import cascade_core as cs

        @cs.task(cache=True)
        def lost(x):
            return x if x else not_defined_anywhere(x)  # defined later, or never
        """,
    )
    with caplog.at_level(logging.WARNING, logger="cascade"):
        first = module.lost.code_version
        assert module.lost.code_version == first
        for _ in range(2):
            assert cs.run(module.lost(1), cache_backend=cs.MemoryCacheBackend()) == 1
    warnings = [record.getMessage() for record in caplog.records if "cannot follow" in record.getMessage()]
    assert warnings == [
        "task cv_missing.lost: its code version cannot follow cv_missing.not_defined_anywhere (not found when it was "
        "computed); changes there do not invalidate its cache: give the task version=... and change it when they change"
    ]


def test_version_overrides_everything_and_the_analysis_runs_once_per_task(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _module(
        tmp_path,
        "cv_pinned",
        """
        import cascade_core as cs

        def helper(x):
            return x

        @cs.task(cache=True, version="7")
        def pinned(x):
            return helper(x)

        @cs.task(cache=True)
        def unpinned(x):
            return helper(x)
        """,
    )
    assert module.pinned.code_version == "7"
    assert "cv_pinned.helper" in module.pinned.code.units  # what explain compares
    calls = []
    import cascade_core._build.code_version as analysis

    monkeypatch.setattr(analysis, "follow", lambda fn, label: calls.append(label) or analysis.CodeVersion("d", {}, ()))
    for _ in range(3):
        cs.run([module.unpinned(i) for i in range(5)], cache_backend=cs.MemoryCacheBackend())
    assert calls == ["cv_pinned.unpinned"]


CODE_FORMAT_SOURCE = """
import cascade_core as cs


def helper(x):
    return x + 1


@cs.task(cache=True)
def keyed(x):
    return helper(x)
"""


def test_code_versions_keep_their_format(tmp_path, monkeypatch):
    """Key format 3 (docs/concepts.md, "Node identity"): a task's code version is the digest of
    the normal forms of its code and its callees'. A change here makes every cached task of every
    user miss once."""
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _module(tmp_path, "cv_format", CODE_FORMAT_SOURCE)
    assert module.keyed.code.units == {
        "cv_format.helper": "14c73e4ff44625f9f62eb6a1685598c3",
        "cv_format.keyed": "bc37759d88f04ea21316052278a70e60",
    }
    assert module.keyed.code_version == "2d1f518be8e58d255b496fe00dba1b46"
    cache = cs.MemoryCacheBackend()
    cs.run(module.keyed(1), cache_backend=cache)
    assert len(cache.get_many(["cv_format.keyed:3506ebc0754db553ba0c4de193b82a94"])) == 1


SCRIPT = """
import os

import cascade_core as cs

NAMES = frozenset({"a", "b", "c", "d"})
LIMIT = int(os.environ["CV_LIMIT"])  # read at import: its source counts, not its value


def helper(x):
    return x in NAMES and len(x) < LIMIT


@cs.task(cache=True)
def member(x):
    return helper(x)


if __name__ == "__main__":
    print(member.code_version)
"""


def test_a_script_run_or_imported_under_any_name_has_one_code_version_whatever_the_seed_and_environment(tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    printed = set()
    elsewhere = (  # loaded from its file under another name, not in sys.modules (as some test kits do)
        "import importlib.util as u; s = u.spec_from_file_location('other_name', 'script.py'); "
        "m = u.module_from_spec(s); s.loader.exec_module(m); print(m.member.code_version)"
    )
    runs = (
        ("1", ["script.py"]),
        ("2", ["-c", "import script; print(script.member.code_version)"]),
        ("3", ["-c", elsewhere]),
    )
    for seed, command in runs:
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "CV_LIMIT": seed,
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        }
        done = subprocess.run(
            [sys.executable, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        printed.add(done.stdout.strip())
    assert len(printed) == 1


class _Payload:
    """A large value a task closes over."""


def test_computing_a_code_version_keeps_no_value_alive():
    import gc
    import weakref

    def make(value):
        @cs.task(name="cv.closes", cache=True)
        def closes(x):
            return value is not None

        return closes

    value = _Payload()
    alive = weakref.ref(value)
    task = make(value)
    assert any(name.endswith("._Payload") for name in task.code.units)  # followed by its class
    del task, value
    gc.collect()
    assert alive() is None
