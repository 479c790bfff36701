"""What a task raises that is hard to handle: an exception whose ``str()`` raises still fails its
task (recorded and shown by the CLI), and SystemExit stops the run, is recorded as crashed and
propagates (its code becomes the CLI's exit code). Cache entries that no longer load:
test_cache_lookup.py; size limits: test_size_limits.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cascade_test_cli import cli

import cascade_core as cs

# -- an exception that cannot describe itself still fails its task --------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this message cannot be read")


@pytest.mark.parametrize("workers", [1, 4])
def test_an_exception_whose_str_raises_fails_its_task(tmp_path: Path, workers: int):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    calls: list[int] = []

    failed: list[BaseException] = []

    class Watcher:
        @cs.hookimpl
        def cascade_task_failed(self, error):
            failed.append(error)

    @cs.task(retries=1)
    def broken(i: int) -> int:
        calls.append(i)
        raise Unprintable()

    @cs.task
    def total(values: list) -> int:
        return sum(values)

    engine = cs.Engine(uri, uri, max_workers=workers, observers=[Watcher()])
    with pytest.raises(cs.TaskFailed) as info:
        engine.run(total([broken(1), broken(2)]), run_id="unprintable")
    assert isinstance(info.value.cause, Unprintable)
    assert info.value.task.endswith("broken")
    assert "\n" not in str(info.value)
    assert sorted(calls) == [1, 1, 2, 2]  # retried, then failed: the run went on to the end
    assert [type(error) for error in failed] == [Unprintable, Unprintable]

    shown = json.loads(cli(tmp_path, "runs", "show", "unprintable", "--state", uri, "--json").stdout)
    assert shown["info"]["status"] == "failed"
    assert "Unprintable" in shown["info"]["error"]


FLOW_UNPRINTABLE = """
import cascade_core as cs


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("this message cannot be read")


@cs.task
def broken() -> int:
    raise Unprintable()


@cs.task
def after(value: int) -> int:
    return value


target = after(broken())
"""


def test_the_cli_reports_an_unprintable_task_exception_as_a_task_failure(tmp_path: Path):
    (tmp_path / "flow.py").write_text(FLOW_UNPRINTABLE)
    result = cli(tmp_path, "run", "flow.py:target", "--state", "sqlite:///store.db", "--run-id", "cli-unprintable")
    assert result.returncode == 1, result.stderr  # the task-failed code, not 2 (bad input)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken" in errors[0] and "Unprintable" in errors[0], result.stderr


# -- SystemExit in a task stops the run ------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 4])
def test_systemexit_in_a_task_stops_the_run_records_it_as_crashed_and_propagates(workers: int):
    store = cs.MemoryStateStore()
    ran: list[str] = []

    @cs.task
    def first() -> int:
        ran.append("first")
        return 1

    @cs.task(retries=2)
    def quits(value: int) -> int:
        ran.append("quits")
        raise SystemExit(3)

    @cs.task
    def after(value: int) -> int:
        ran.append("after")
        return value

    engine = cs.Engine(store, max_workers=workers)
    with pytest.raises(SystemExit) as info:
        engine.run(after(quits(first())), run_id="exits")
    assert info.value.code == 3
    assert ran == ["first", "quits"]  # not retried; nothing after it started
    run_info = store("exits").get_run_info()
    assert (run_info["status"], run_info["error"]) == ("crashed", "SystemExit: 3")
    assert len(store("exits").result_ids()) == 1  # first's result is kept: a rerun resumes from it

    ran.clear()
    with pytest.raises(SystemExit):
        engine.run(after(quits(first())), run_id="exits")
    assert ran == ["quits"]


def test_systemexit_in_an_async_task_stops_the_run_instead_of_hanging_it():
    code = """
import cascade_core as cs

store = cs.MemoryStateStore()

@cs.task
async def quits() -> int:
    raise SystemExit(4)

@cs.task
def after(value: int) -> int:
    return value

try:
    cs.run(after(quits()), state_backend=store, run_id="async-exit")
except SystemExit as exc:
    print(exc.code, store("async-exit").get_run_info()["status"])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout.strip()) == (0, "4 crashed"), result.stderr[-2000:]


FLOW_EXIT = """
import cascade_core as cs


@cs.task
def quits() -> int:
    raise SystemExit(3)


target = quits()
"""


def test_the_cli_exits_with_the_code_a_task_passed_to_systemexit(tmp_path: Path):
    (tmp_path / "flow.py").write_text(FLOW_EXIT)
    result = cli(tmp_path, "run", "flow.py:target", "--state", "sqlite:///store.db", "--run-id", "cli-exit")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    shown = json.loads(cli(tmp_path, "runs", "show", "cli-exit", "--state", "sqlite:///store.db", "--json").stdout)
    assert (shown["info"]["status"], shown["info"]["error"]) == ("crashed", "SystemExit: 3")
