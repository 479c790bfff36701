"""``cascade runs list|show|forget`` and ``cascade cache clear`` through subprocesses, on sqlite."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from cascade_test_cli import FLOW_HEAD, calls, cli, ok

FLOW = (
    FLOW_HEAD
    + """
@cs.task(cache=True)
def load(i: int) -> str:
    note("load")
    return "x" * (100 * (i + 1))


@cs.task(cache=True)
def measure(text: str) -> int:
    note("measure")
    return len(text)


@cs.task
def check(sizes: list, fail: bool) -> int:
    note("check")
    if fail:
        raise ValueError("sizes look wrong")
    return sum(sizes)


@cs.task
def publish(total: int) -> str:
    note("publish")
    return f"total={total}"


def pipeline():
    return publish(check([measure(load(i)) for i in range(3)], fail))
"""
)

STATE = "sqlite:///runs.db"
STORE = ["--state", STATE, "--cache", STATE]


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def show(cwd: Path, run_id: str) -> dict:
    return json.loads(ok(cwd, "runs", "show", run_id, "--state", STATE, "--json").stdout)


def test_list_shows_every_run_newest_first(flow):
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "first")
    assert cli(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "second", "-p", "fail=yes").returncode == 1
    runs = json.loads(ok(flow, "runs", "list", "--state", STATE, "--json").stdout)
    assert [run["run_id"] for run in runs] == ["second", "first"]
    assert [run["status"] for run in runs] == ["failed", "succeeded"]
    assert all({"created", "updated", "tasks", "results"} <= set(run) for run in runs)

    table = ok(flow, "runs", "list", "--state", STATE).stdout.splitlines()
    assert table[0].split()[:4] == ["RUN", "ID", "STATUS", "CREATED"]
    assert table[1].split()[:2] == ["second", "failed"] and table[2].split()[:2] == ["first", "succeeded"]


def test_show_gives_each_task_its_status_timing_size_and_why(flow):
    assert cli(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "r1", "--param", "fail=true").returncode == 1
    shown = show(flow, "r1")
    assert shown["run_id"] == "r1" and shown["info"]["status"] == "failed"
    by_task: dict[str, list[dict]] = {}
    for row in shown["tasks"]:
        assert set(row) == {"node_id", "task", "status", "reason", "duration_s", "size", "finished", "parent"}
        assert row["parent"] is None  # no map, router or returned graph added it
        by_task.setdefault(row["task"], []).append(row)
    assert [row["status"] for row in by_task["flow.load"]] == ["done"] * 3
    assert all(row["size"] > 100 and row["duration_s"] >= 0 for row in by_task["flow.load"])
    (check,) = by_task["flow.check"]
    assert check["status"] == "failed" and check["reason"] == "ValueError: sizes look wrong"
    (publish,) = by_task["flow.publish"]
    assert publish["status"] == "skipped" and publish["reason"] == "upstream failed: flow.check"
    # Sorted by finished time, then task name.
    keys = [(row["finished"] or "~", row["task"]) for row in shown["tasks"]]
    assert keys == sorted(keys)

    # Resume with the cause fixed: the fresh tasks are done, the old rows keep their time.
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "r1", "--param", "fail=false")
    shown = show(flow, "r1")
    statuses = Counter((row["task"], row["status"]) for row in shown["tasks"])
    assert statuses[("flow.publish", "done")] == 1 and statuses[("flow.check", "done")] == 1
    failed_before = [row for row in shown["tasks"] if row["status"] == "failed"]
    assert [row["reason"] for row in failed_before] == ["earlier attempt: ValueError: sizes look wrong"]
    assert shown["tasks"][-1]["task"] == "flow.publish"

    text = ok(flow, "runs", "show", "r1", "--state", STATE).stdout.splitlines()
    assert text[0].startswith("run r1: succeeded, target flow.publish, 8 tasks")
    assert text[1].split() == ["TASK", "NODE", "STATUS", "FINISHED", "DURATION", "SIZE", "WHY"]
    assert any(line.startswith("flow.publish") and " done " in line for line in text)


def test_show_after_a_warm_run_reports_cached_tasks(flow):
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "cold")
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "warm")
    statuses = Counter((row["task"], row["status"]) for row in show(flow, "warm")["tasks"])
    assert statuses[("flow.measure", "cached")] == 3
    assert statuses[("flow.check", "done")] == 1


def test_forget_deletes_the_run(flow):
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "gone")
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "kept")
    assert ok(flow, "runs", "forget", "gone", "--state", STATE).stdout == "forgot run gone\n"
    runs = json.loads(ok(flow, "runs", "list", "--state", STATE, "--json").stdout)
    assert [run["run_id"] for run in runs] == ["kept"]
    for command in (["runs", "show", "gone"], ["runs", "forget", "gone"]):
        done = cli(flow, *command, "--state", STATE)
        assert done.returncode == 2 and done.stderr.startswith("error: no run 'gone'")
    # Forgotten means not resumable: the same run id runs everything again (cache aside).
    before = calls(flow)
    report = json.loads(ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "gone", "--json").stdout)
    assert report["counts"]["resumed"] == 0
    assert calls(flow) - before == Counter({"check": 1, "publish": 1})


def test_cache_clear_of_one_task_then_of_everything(flow):
    ok(flow, "run", "flow.py:pipeline", *STORE)
    assert calls(flow) == {"load": 3, "measure": 3, "check": 1, "publish": 1}

    done = ok(flow, "cache", "clear", "--cache", STATE, "--task", "flow.measure")
    assert done.stdout == "removed 3 cache entries of task flow.measure from sqlite:///runs.db\n"
    ok(flow, "run", "flow.py:pipeline", *STORE)
    # measure's entries are gone, so it runs again, on load's values, which are still cached.
    after_task_clear = calls(flow)
    assert after_task_clear["measure"] == 6
    assert after_task_clear["load"] == 3

    assert ok(flow, "cache", "clear", "--cache", STATE, "--task", "flow.nothing").stdout.startswith("removed 0 ")
    done = ok(flow, "cache", "clear", "--cache", STATE)
    assert done.stdout == "removed 6 cache entries from sqlite:///runs.db\n"
    ok(flow, "run", "flow.py:pipeline", *STORE)
    assert calls(flow) == {"load": 6, "measure": 9, "check": 3, "publish": 3}
    assert ok(flow, "cache", "clear", "--cache", STATE).stdout == "removed 6 cache entries from sqlite:///runs.db\n"


PYTHON_RUN = """
import cascade_core as cs
import flow

try:
    cs.run(flow.pipeline(), params={"fail": True}, state_backend="sqlite:///runs.db", run_id="c")
except cs.TaskFailed:
    pass
"""


def test_the_report_of_a_failed_run_gives_the_command_that_resumes_it(flow):
    failed = cli(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "c", "-p", "fail=true")
    assert failed.returncode == 1
    command = next(line for line in failed.stderr.splitlines() if line.startswith("to resume: "))[len("to resume: ") :]
    assert show(flow, "c")["info"]["resume_command"] == command  # kept in the run info
    ok(flow, "runs", "show", "c", "--state", STATE, "--html", "cli.html")
    page = (flow / "cli.html").read_text()
    assert f"To resume: <code>{html.escape(command)}</code>" in page and "rerun with run_id" not in page

    # Failed again from Python: no command to give, so the report gives the Python call.
    env = {**os.environ, "FLOW_LOG": str(flow / "calls.log"), "PYTHONPATH": str(flow)}
    before = calls(flow)
    done = subprocess.run([sys.executable, "-c", PYTHON_RUN], cwd=flow, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert calls(flow) - before == Counter({"check": 1})  # it resumed: only the failed task ran again
    assert show(flow, "c")["info"]["resume_command"] == ""
    ok(flow, "runs", "show", "c", "--state", STATE, "--html", "python.html")
    page = (flow / "python.html").read_text()
    assert "To resume: <code>cascade_core.run(TARGET, run_id=&#x27;c&#x27;, state_backend=...)" in page

    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "c", "-p", "fail=false")
    ok(flow, "runs", "show", "c", "--state", STATE, "--html", "done.html")
    assert "To resume" not in (flow / "done.html").read_text()
