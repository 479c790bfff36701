"""docs/executors.md's worked example is real code: it runs the executor contract's graphs in
worker processes, and the CLI runs a flow with --executor and $CASCADE_EXECUTOR."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.core.test_conformance_kit import EXECUTOR_TESTS

import cascade_core as cs
from cascade_core.testing import executor_tasks as t

ROOT = Path(__file__).resolve().parents[2]


def example_module(folder: Path) -> Path:
    """Write the example's code as the module a plugin would ship (its helpers pickle by reference):
    ``folder/docs_process_pool.py``, plus a ``docs-pool://`` provider for the kit in
    ``folder/docs_pool_plugin.py``."""
    text = (ROOT / "docs" / "executors.md").read_text()
    section = text[text.index("## A worked example") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    (folder / "docs_process_pool.py").write_text(code[1])
    (folder / "docs_pool_plugin.py").write_text(PLUGIN)
    return folder


PLUGIN = """
import cascade_core as cs
from docs_process_pool import ProcessPoolExecutor


class Provider:
    @cs.hookimpl
    def cascade_executor(self, uri):
        uri.parse_options({})
        return ProcessPoolExecutor(2)


cs.register_backend("docs-pool", Provider(), replace=True)
"""


@pytest.fixture(scope="module")
def process_pool(tmp_path_factory):
    import importlib

    folder = example_module(tmp_path_factory.mktemp("docs_example"))
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("docs_process_pool")
        executor = module.ProcessPoolExecutor(2)
        yield executor
        executor.close()
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("docs_process_pool", None)


def test_the_documented_process_pool_passes_the_kit(tmp_path):
    import os

    folder = example_module(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
    kit = [sys.executable, "-m", "pytest", "--pyargs", "cascade_core.testing", "-q", "-W", "error"]
    command = [*kit, "-p", "no:cacheprovider", "-p", "docs_pool_plugin", "--cascade-uri", "docs-pool://"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert f"{EXECUTOR_TESTS} passed" in summary and "failed" not in summary, summary


def test_the_documented_process_pool_runs_tasks_in_other_processes(process_pool, tmp_path):
    import os

    target = t.total([t.inc(i) for i in range(20)])
    report = cs.Engine("memory://", "memory://", executor=process_pool).execute(target)
    assert report.value == 210 and report.counts["executed"] == 21
    # The side effects of a task happen in a worker process, not here.
    cs.run(t.flaky(str(tmp_path), 0), executor=process_pool)
    (mark,) = list(tmp_path.iterdir())
    assert mark.name.split("-")[1] != str(os.getpid())


def test_the_documented_process_pool_keeps_retries_with_the_engine(process_pool, tmp_path):
    assert cs.run(t.flaky(str(tmp_path), 2), executor=process_pool) == 3
    assert t.count(str(tmp_path), "flaky") == 3
    assert cs.run(t.total([t.async_double(i) for i in range(5)]), executor=process_pool) == 20
    with pytest.raises(cs.TaskFailed, match="broken on purpose"):
        cs.run(t.fail("broken on purpose"), executor=process_pool)


FLOW = """
import os
import cascade_core as cs

@cs.task
def where(i):
    import threading
    return threading.current_thread().name

def pipeline():
    return [where(i) for i in range(3)]
"""


def _cascade(tmp_path, *args, env=None):
    import os

    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], cwd=tmp_path, capture_output=True, text=True, env=environ
    )


def test_cascade_run_takes_an_executor_from_the_option_or_the_environment(tmp_path):
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    inline = _cascade(tmp_path, "run", "flow.py:pipeline", "--executor", "inline://", "--json")
    assert inline.returncode == 0, inline.stderr
    assert '"result": ["MainThread", "MainThread", "MainThread"]' in inline.stdout
    threads = _cascade(
        tmp_path, "run", "flow.py:pipeline", "--json", env={"CASCADE_EXECUTOR": "threads://?max_workers=3"}
    )
    assert threads.returncode == 0, threads.stderr
    assert "cascade-worker" in threads.stdout
    bad = _cascade(tmp_path, "run", "flow.py:pipeline", "--executor", "nosuch://")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "nosuch" in bad.stderr and "Traceback" not in bad.stderr
    wrong = _cascade(tmp_path, "run", "flow.py:pipeline", "--executor", "sqlite:///x.db")
    assert wrong.returncode == 2 and "provides no executor" in wrong.stderr, wrong.stderr
