"""Executors as a capability of the ``cascade.backends`` plugin path (issue 12, registry side).

In-process tests use the built-in ``threads://`` and ``inline://`` (registered through
cascade-core's own entry points) and providers registered with ``cs.register_backend``;
the subprocess tests install tests/plugins/execs for real entry-point metadata.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core._plugins.call import Outcome, run_call
from cascade_core._plugins.registry import registry
from cascade_core._plugins.resolve import ExecutorSpec, resolve_cache, resolve_executor, resolve_state
from cascade_core.backends.memory import MemoryCacheBackend, MemoryStateStore
from cascade_core.cli import _backends, main
from cascade_core.executors.inline import InlineExecutor
from cascade_core.executors.threads import ThreadsExecutor, default_workers

ROOT = Path(__file__).resolve().parents[2]
CORE_VERSION = next(row for row in registry.entries() if row[0].scheme == "memory")[0].version


@pytest.fixture(autouse=True)
def _without_cascade_dask(monkeypatch):
    """These tests describe cascade-core's own executors: hide cascade-dask where it is installed
    (tests/dask/ test it), so that dask:// gives its not-installed hint here."""
    claims = {scheme: found for scheme, found in registry._discover().items() if not scheme.startswith("dask")}
    monkeypatch.setattr(registry, "_claims", claims)


def _installed(kind: str) -> str:
    return ", ".join(registry.schemes(kind))


# -- what is installed ------------------------------------------------------------------------


def test_the_installed_lists_by_kind_hold_the_built_ins():
    assert _installed("executor") == "inline, threads"
    assert {"memory", "sqlite"} <= set(registry.schemes("state")) and "threads" not in registry.schemes("state")
    assert {"memory", "sqlite"} <= set(registry.schemes("cache")) and "inline" not in registry.schemes("cache")


def test_listing_shows_the_built_in_executors_without_importing_them(tmp_path):
    code = (
        "import sys\n"
        "from cascade_core.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(sorted(m for m in sys.modules if m.startswith('cascade_core.executors')), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    listing = subprocess.run(
        [sys.executable, "-c", code, "backends", "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stderr.strip() == "[]"  # nothing imported to list them
    rows = {row["scheme"]: row for row in json.loads(listing.stdout)}
    for scheme in ("threads", "inline"):
        assert rows[scheme] == {
            "scheme": scheme,
            "distribution": "cascade-core",
            "version": CORE_VERSION,
            "target": f"cascade_core.executors.builtin:{scheme}",
            "provides": ["executor"],
            "status": "available",
            "error": None,
        }
    assert rows["sqlite"]["provides"] == ["state", "cache"]

    table = subprocess.run(
        [sys.executable, "-c", code, "backends"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert table.returncode == 0 and table.stderr.strip() == "[]"
    lines = [line.split() for line in table.stdout.splitlines()]
    assert [
        "threads",
        "cascade-core",
        CORE_VERSION,
        "cascade_core.executors.builtin:threads",
        "executor",
        "available",
    ] in lines
    assert [
        "inline",
        "cascade-core",
        CORE_VERSION,
        "cascade_core.executors.builtin:inline",
        "executor",
        "available",
    ] in lines


def test_check_validates_the_executors(capsys):
    assert main(["backends", "--check", "--json"]) == 0
    rows = {row["scheme"]: row for row in json.loads(capsys.readouterr().out)}
    for scheme in ("threads", "inline"):
        assert (rows[scheme]["status"], rows[scheme]["provides"], rows[scheme]["error"]) == ("ok", ["executor"], None)


# -- cascade backends check URI ----------------------------------------------------------------

_OK_LINE = r"{uri} executor: ok \(\d+\.\d ms\): {found}, {n} at once, ran a task in the driver's process"


@pytest.mark.parametrize(
    ("uri", "found", "workers"),
    [
        ("threads://?max_workers=2", "ThreadsExecutor(max_workers=2)", 2),
        ("threads://", f"ThreadsExecutor(max_workers={default_workers()})", default_workers()),
        ("inline://", "InlineExecutor()", 1),
    ],
)
def test_check_runs_a_task_on_the_executor_and_says_what_it_found(capsys, uri, found, workers):
    assert main(["backends", "check", uri]) == 0
    expected = _OK_LINE.format(uri=re.escape(uri), found=re.escape(found), n=workers)
    assert re.fullmatch(expected, capsys.readouterr().out.strip())

    assert main(["backends", "check", uri, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["uri"] == uri and report["distribution"] == "cascade-core"
    (check,) = report["checks"]
    assert check["backend"] == "executor" and check["ok"] is True and check["error"] is None
    assert check["detail"] == f"{found}, {workers} at once, ran a task in the driver's process"


def test_check_of_a_bad_executor_uri_is_bad_input(capsys):
    assert main(["backends", "check", "threads://?max_workers=0"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: invalid value '0' for option 'max_workers' in threads://?max_workers=0: expected a whole number"
    )
    assert main(["backends", "check", "inline://?max_workers=2"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown option 'max_workers' in inline:// URI inline://?max_workers=2; known options: none\n"
    )


class _Executor:
    """A runtime-registered executor whose outcome is chosen by the test."""

    max_workers = 1

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.closed = self.cancelled = 0

    def submit(self, call, done):
        executor = self

        class Handle:
            def cancel(self) -> bool:
                executor.cancelled += 1
                return True

        if self.behaviour == "fail":
            done(Outcome(call.index, False, RuntimeError("worker lost\nsecond line"), None, 0.0))
        elif self.behaviour == "wrong":
            done(Outcome(call.index, True, 42, b"\x80\x05K*.", 0.0))  # pickle of 42
        elif self.behaviour == "raise":
            raise OSError("scheduler gone")
        return Handle()  # "hang": never calls done

    def close(self) -> None:
        self.closed += 1


def _register(behaviour: str) -> _Executor:
    executor = _Executor(behaviour)

    class Provider:
        @cs.hookimpl
        def cascade_executor(self, uri):
            return executor

    cs.register_backend(behaviour + "exec", Provider())
    return executor


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("fail", "executor failexec:// failed a trivial task: RuntimeError: worker lost"),
        ("wrong", "executor wrongexec:// returned something else than the task's result"),
        ("hang", "executor hangexec:// did not run a trivial task within 0.2 s"),
        ("raise", "executor raiseexec:// raised from submit(): OSError: scheduler gone"),
    ],
)
def test_check_reports_an_executor_that_fails_the_task(capsys, monkeypatch, behaviour, error):
    monkeypatch.setattr(_backends, "CHECK_TIMEOUT", 0.2)
    executor = _register(behaviour)
    assert main(["backends", "check", f"{behaviour}exec://"]) == 1
    out = capsys.readouterr().out
    assert re.fullmatch(rf"{behaviour}exec:// executor: FAILED: {re.escape(error)} \(\d+\.\d ms\)", out.strip())
    assert executor.closed == 1 and executor.cancelled == (1 if behaviour == "hang" else 0)


# -- registry.executor and broken plugins -------------------------------------------------------


def test_registry_executor_returns_a_new_checked_executor_each_time():
    first = registry.executor(cs.BackendURI.parse("threads://?max_workers=3"))
    second = registry.executor(cs.BackendURI.parse("threads://?max_workers=3"))
    assert isinstance(first, ThreadsExecutor) and first.max_workers == 3 and first is not second
    first.close()
    second.close()
    assert isinstance(registry.executor(cs.BackendURI.parse("INLINE://")), InlineExecutor)


def test_a_runtime_provider_whose_hook_raises_breaks_only_its_scheme(capsys):
    calls = []

    class Boom:
        @cs.hookimpl
        def cascade_executor(self, uri):
            calls.append(str(uri))
            raise RuntimeError("no cluster at this address")

    cs.register_backend("boom", Boom())
    message = "executor plugin for boom:// ((runtime)) failed on boom://h:1: RuntimeError: no cluster at this address"
    for _ in range(2):
        with pytest.raises(cs.PluginError) as caught:
            resolve_executor("boom://h:1")
        assert str(caught.value) == message and caught.value.scheme == "boom"
        assert isinstance(caught.value.__cause__, RuntimeError)
    assert calls == ["boom://h:1", "boom://h:1"]
    spec = resolve_executor("threads://")  # every other scheme keeps working
    assert isinstance(spec.executor, ThreadsExecutor)
    spec.close()
    assert cs.run(_double(21)) == 42

    assert main(["backends", "--json"]) == 0
    rows = {row["scheme"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["boom"]["provides"] == ["executor"] and rows["boom"]["distribution"] == "(runtime)"
    assert main(["backends", "check", "boom://h:1"]) == 1
    assert capsys.readouterr().out.startswith(f"boom://h:1 executor: FAILED: {message} (")


@cs.task
def _double(x: int) -> int:
    return 2 * x


class _NoSubmit:
    max_workers = 0

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_provider_returning_something_that_is_not_an_executor():
    made: list[_NoSubmit] = []

    class Half:
        @cs.hookimpl
        def cascade_executor(self, uri):
            made.append(_NoSubmit())
            return made[-1]

    cs.register_backend("half", Half())
    with pytest.raises(cs.PluginError) as caught:
        resolve_executor("half://")
    assert str(caught.value) == (
        "executor plugin for half:// ((runtime)) returned _NoSubmit, which is not an executor: "
        "missing submit, max_workers (see docs/executors.md)"
    )
    assert made[0].closed == 1  # what the plugin made is closed, not leaked


def test_a_provider_returning_nothing_and_one_with_no_hook():
    class Nothing:
        @cs.hookimpl
        def cascade_executor(self, uri):
            return None

    cs.register_backend("nothing", Nothing())
    with pytest.raises(cs.PluginError) as caught:
        resolve_executor("nothing://x")
    assert str(caught.value) == "executor plugin for nothing:// ((runtime)) returned nothing for nothing://x"

    class Empty:
        pass

    cs.register_backend("empty", Empty())
    with pytest.raises(cs.PluginError) as caught:
        resolve_executor("empty://")
    assert str(caught.value) == (
        "backend plugin for empty:// from (runtime) implements no hook: define cascade_state_backend, "
        "cascade_cache_backend, cascade_executor, cascade_blob_store (any of them) with @cascade_core.hookimpl"
    )


def test_a_runtime_executor_wins_over_the_built_in_and_unregistering_restores_it():
    class Mine:
        @cs.hookimpl
        def cascade_executor(self, uri):
            return InlineExecutor()

    cs.register_backend("threads", Mine())
    assert isinstance(resolve_executor(None).executor, InlineExecutor)  # the default goes through the registry
    cs.unregister_backend("threads")
    spec = resolve_executor(None)
    assert isinstance(spec.executor, ThreadsExecutor)
    spec.close()


# -- resolve_executor ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "workers", "kind", "count", "label"),
    [
        (None, None, ThreadsExecutor, default_workers(), "threads://"),
        (None, 3, ThreadsExecutor, 3, "threads://?max_workers=3"),
        ("threads://?max_workers=2", None, ThreadsExecutor, 2, "threads://?max_workers=2"),
        ("threads://", 5, ThreadsExecutor, 5, "threads://?max_workers=5"),
        ("threads://?max_workers=4", 4, ThreadsExecutor, 4, "threads://?max_workers=4"),
        (cs.BackendURI.parse("inline://"), None, InlineExecutor, 1, "inline://"),
        ("inline://", 1, InlineExecutor, 1, "inline://"),
    ],
)
def test_resolve_executor_from_a_uri_owns_it(value, workers, kind, count, label):
    spec = resolve_executor(value, workers)
    assert type(spec.executor) is kind and spec.executor.max_workers == count
    assert (spec.label, spec.owned) == (label, True)
    spec.close()
    spec.close()  # closing twice is harmless


def test_resolve_executor_closes_only_what_it_made():
    mine = ThreadsExecutor(2)
    for workers in (None, 2):
        spec = resolve_executor(mine, workers)
        assert spec == ExecutorSpec(mine, label="ThreadsExecutor(max_workers=2)", owned=False)
    closed = []
    mine.close = lambda: closed.append(1)  # type: ignore[method-assign]
    resolve_executor(mine).close()
    assert closed == []


_SECRET = "s3cret-pw"


@pytest.mark.parametrize(
    ("value", "workers", "error", "message"),
    [
        (
            "inline://",
            4,
            cs.DefinitionError,
            "max_workers=4 does not apply to the executor inline://, which takes no max_workers option and runs 1 "
            "at once: drop max_workers, or choose an executor that takes it, such as threads://?max_workers=4",
        ),
        (
            "threads://?max_workers=8",
            4,
            cs.DefinitionError,
            "max_workers=4 conflicts with the executor threads://?max_workers=8, which runs 8 at once: "
            "give the number once, in the URI or as max_workers",
        ),
        (
            ThreadsExecutor(8),
            4,
            cs.DefinitionError,
            "max_workers=4 conflicts with the executor ThreadsExecutor(max_workers=8), which runs 8 at once: "
            "give the number once, on the executor",
        ),
        (None, 0, cs.DefinitionError, "max_workers must be a whole number >= 1, got 0"),
        ("threads://", True, cs.DefinitionError, "max_workers must be a whole number >= 1, got True"),
        (
            "threads://?max_workers=many",
            None,
            cs.InvalidURIError,
            # the converter's own words follow (another module's)
            "invalid value 'many' for option 'max_workers' in threads://?max_workers=many: expected a whole number...",
        ),
        (
            f"threads://?max_wokers=2&token={_SECRET}",
            None,
            cs.InvalidURIError,
            "unknown option 'max_wokers' in threads:// URI threads://?max_wokers=2&token=***; "
            "known options: max_workers",
        ),
        (
            "nosuch://x",
            None,
            cs.BackendNotFoundError,
            "unknown executor scheme 'nosuch'; installed executors: {executors} (run 'cascade backends' to see them)",
        ),
        (
            "dask://scheduler:8786",
            None,
            cs.BackendNotFoundError,
            "no executor for dask:// is installed: pip install cascade-dask  (installed executors: {executors})",
        ),
        (
            "dask+tls://scheduler:8786",
            None,
            cs.BackendNotFoundError,
            "no executor for dask+tls:// is installed: pip install cascade-dask  (installed executors: {executors})",
        ),
        (
            ThreadsExecutor,
            None,
            cs.DefinitionError,
            "executor must be an executor object, not the class ThreadsExecutor: pass an instance, "
            "such as ThreadsExecutor()",
        ),
        (
            8,
            None,
            cs.DefinitionError,
            "executor must be a URI such as 'threads://?max_workers=8' or 'inline://', or an object with submit, "
            "close and max_workers; got int (missing submit, close, max_workers)",
        ),
    ],
)
def test_resolve_executor_errors(value, workers, error, message):
    with pytest.raises(error) as caught:
        resolve_executor(value, workers)
    assert type(caught.value) is error
    expected = message.format(executors=_installed("executor"))
    if expected.endswith("..."):
        assert str(caught.value).startswith(expected[:-3]) and "\n" not in str(caught.value)
    else:
        assert str(caught.value) == expected
    assert _SECRET not in str(caught.value)


# -- the wrong argument ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolve", "value", "message"),
    [
        (
            resolve_state,
            "threads://",
            "threads:// (cascade-core) provides no state backend, only an executor: choose another URI for the "
            "state backend (installed: {state})",
        ),
        (
            resolve_cache,
            "inline://",
            "inline:// (cascade-core) provides no cache backend, only an executor: choose another URI for the "
            "cache backend (installed: {cache})",
        ),
        (
            resolve_executor,
            "sqlite:///x.db",
            "sqlite:// (cascade-core) provides no executor, only state and cache backends: choose another URI for "
            "the executor (installed: {executors})",
        ),
        (
            resolve_executor,
            "memory://",
            "memory:// (cascade-core) provides no executor, only state and cache backends and a blob store: choose "
            "another URI for "
            "the executor (installed: {executors})",
        ),
    ],
)
def test_a_uri_given_to_the_wrong_argument_names_what_is_missing(tmp_path, monkeypatch, resolve, value, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cs.PluginError) as caught:
        resolve(value)
    expected = message.format(state=_installed("state"), cache=_installed("cache"), executors=_installed("executor"))
    assert str(caught.value) == expected
    assert not list(tmp_path.iterdir())  # sqlite:///x.db was not created


def test_the_wrong_argument_through_cs_run_runs_nothing(counter):
    @cs.task
    def hit() -> int:
        counter.hit("hit")
        return 1

    with pytest.raises(cs.PluginError, match=r"^threads:// \(cascade-core\) provides no state backend, only an"):
        cs.run(hit(), state_backend="threads://")
    with pytest.raises(cs.PluginError, match=r"^inline:// \(cascade-core\) provides no cache backend, only an"):
        cs.run(hit(), cache_backend="inline://?x=1")
    assert counter.total == 0


def test_an_unknown_executor_only_scheme_given_as_a_backend_says_what_its_distribution_offers():
    with pytest.raises(cs.BackendNotFoundError) as caught:
        resolve_state("dask://scheduler:8786")
    assert str(caught.value) == (
        "no state backend for dask://: cascade-dask (not installed) offers an executor only; choose another URI "
        f"for the state backend (installed schemes: {_installed('state')})"
    )
    # cascade-redis is installed in the test environment: redis:// is found and offers no executor.
    with pytest.raises(cs.PluginError) as caught:
        resolve_executor("redis://localhost:6379/0")
    assert str(caught.value) == (
        "redis:// (cascade-redis) provides no executor, only state and cache backends: choose another URI for "
        f"the executor (installed: {_installed('executor')})"
    )


@pytest.mark.parametrize(
    ("resolve", "value", "message"),
    [
        (
            resolve_state,
            ThreadsExecutor(2),
            "state_backend must be a URI such as 'sqlite:///cascade.db', a factory run_id -> StateBackend, or a "
            "StateBackend; got ThreadsExecutor (missing put_results, get_results, result_ids, mark_skipped, "
            "get_skip_reasons, set_run_info, get_run_info): ThreadsExecutor is an executor, pass it as executor=",
        ),
        (
            resolve_cache,
            InlineExecutor(),
            "cache_backend must be a URI such as 'sqlite:///cascade.db' or a CacheBackend; got InlineExecutor "
            "(missing get_many, set_many, delete_many): InlineExecutor is an executor, pass it as executor=",
        ),
        (
            resolve_executor,
            MemoryCacheBackend(),
            "executor must be a URI such as 'threads://?max_workers=8' or 'inline://', or an object with submit, "
            "close and max_workers; got MemoryCacheBackend (missing submit, max_workers): MemoryCacheBackend is a "
            "cache backend, pass it as cache_backend=",
        ),
        (
            resolve_executor,
            MemoryStateStore()("run"),
            "executor must be a URI such as 'threads://?max_workers=8' or 'inline://', or an object with submit, "
            "close and max_workers; got MemoryStateBackend (missing submit, max_workers): MemoryStateBackend is a "
            "state backend, pass it as state_backend=",
        ),
    ],
)
def test_an_object_given_to_the_wrong_argument_names_what_it_is(resolve, value, message):
    with pytest.raises(cs.DefinitionError) as caught:
        resolve(value)
    assert str(caught.value) == message


# -- a third-party executor plugin, through real entry-point metadata ----------------------------


@pytest.fixture(scope="module")
def execs_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("execs-site")
    build = tmp_path_factory.mktemp("execs-src") / "execs"
    shutil.copytree(ROOT / "tests" / "plugins" / "execs", build)  # no build/ or egg-info in the repository
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--disable-pip-version-check", "--no-warn-script-location", "--target", str(site), str(build)],
        check=True,
        capture_output=True,
        text=True,
    )
    return site


def _in_site(site: Path, tmp_path: Path, args: list[str], code: str | None = None, prefer: str | None = None):
    log = tmp_path / f"imports-{os.urandom(4).hex()}.log"
    env = {**os.environ, "CASCADE_TEST_IMPORT_LOG": str(log), "PYTHONWARNINGS": "default"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("CASCADE_BACKEND_PREFER", None)
    if prefer:
        env["CASCADE_BACKEND_PREFER"] = prefer
    command = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "cascade_core", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    return done, (log.read_text().split() if log.exists() else [])


def test_a_third_party_executor_is_listed_lazily_checked_and_conflicts_like_a_backend(execs_site, tmp_path):
    listing, imported = _in_site(execs_site, tmp_path, ["backends", "--json"])
    assert listing.returncode == 0, listing.stderr
    assert imported == []
    rows = {row["scheme"]: row for row in json.loads(listing.stdout)}
    assert rows["goodexec"] == {
        "scheme": "goodexec",
        "distribution": "cascade-plugin-execs",
        "version": "0.3.0",
        "target": "cascade_plugin_execs:provider",
        "provides": ["executor"],
        "status": "available",
        "error": None,
    }
    assert rows["threads"]["distribution"] == "cascade-core"
    assert rows["threads"]["status"] == "conflict: also claimed by cascade-plugin-execs"

    checked, imported = _in_site(execs_site, tmp_path, ["backends", "check", "goodexec://?label=x"])
    assert checked.returncode == 0, checked.stderr
    assert re.fullmatch(
        r"goodexec://\?label=x executor: ok \(\d+\.\d ms\): GoodExecutor\('x'\), 1 at once, "
        r"ran a task in the driver's process",
        checked.stdout.strip(),
    )
    assert imported == ["cascade_plugin_execs"]  # only the scheme used, not the broken module

    validated, _ = _in_site(execs_site, tmp_path, ["backends", "--check", "--json"])
    assert validated.returncode == 1  # brokenexec fails its check
    rows = {row["scheme"]: row for row in json.loads(validated.stdout)}
    assert (rows["goodexec"]["status"], rows["halfexec"]["status"], rows["brokenexec"]["status"]) == (
        "ok",
        "ok",  # it imports and implements the hook: what it returns is checked on use
        "error",
    )
    assert rows["brokenexec"]["error"] == (
        "executor plugin for brokenexec:// from cascade-plugin-execs 0.3.0 failed to import "
        "(cascade_plugin_execs.broken:provider): ModuleNotFoundError: "
        "No module named 'a_scheduler_that_is_not_installed'"
    )
    assert rows["inline"]["status"] == "ok"


_USE = (
    "import warnings\n"
    "import cascade_core as cs\n"
    "from cascade_core._plugins.resolve import resolve_executor\n"
    "for uri in ('brokenexec://', 'brokenexec://', 'halfexec://'):\n"
    "    try:\n"
    "        resolve_executor(uri)\n"
    "    except cs.PluginError as exc:\n"
    "        print(type(exc.__cause__).__name__, exc)\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    print(resolve_executor('threads://').executor)\n"
    "print(caught[0].message if caught else 'no warning')\n"
    "print(resolve_executor('goodexec://').executor)\n"
)


def test_a_broken_executor_plugin_breaks_only_its_scheme(execs_site, tmp_path):
    done, imported = _in_site(execs_site, tmp_path, [], code=_USE)
    assert done.returncode == 0, done.stderr
    broken, again, half, threads, warning, good = done.stdout.splitlines()
    assert broken == (
        "ModuleNotFoundError executor plugin for brokenexec:// from cascade-plugin-execs 0.3.0 failed to import "
        "(cascade_plugin_execs.broken:provider): ModuleNotFoundError: "
        "No module named 'a_scheduler_that_is_not_installed'"
    )
    assert again == broken  # the same error again, from the remembered failure
    assert half == (
        "NoneType executor plugin for halfexec:// (cascade-plugin-execs) returned Half, which is not an executor: "
        "missing submit (see docs/executors.md)"
    )
    assert threads == f"ThreadsExecutor(max_workers={default_workers()})"  # cascade-core wins the conflict
    assert warning == (
        "URI scheme 'threads' is claimed by several distributions (cascade-core, cascade-plugin-execs); using "
        "cascade-core. Set CASCADE_BACKEND_PREFER=threads=<distribution> to choose"
    )
    assert good == "GoodExecutor('plain')"
    assert imported.count("cascade_plugin_execs.broken") == 1

    preferred, _ = _in_site(execs_site, tmp_path, [], code=_USE, prefer="threads=cascade-plugin-execs")
    assert preferred.returncode == 0, preferred.stderr
    assert preferred.stdout.splitlines()[3] == "GoodExecutor('plain')"


def test_a_task_call_made_by_check_is_picklable():
    """What ``check`` submits must reach an executor in another process."""
    import pickle

    from cascade_core._build.task import Task
    from cascade_core._plugins.call import TaskCall

    call = TaskCall(0, "cascade-check", Task(_backends._probe, name="cascade.check"), ("x",), {})
    outcome = run_call(pickle.loads(pickle.dumps(call)))
    assert outcome.ok and pickle.loads(outcome.body) == ("x", os.getpid())
