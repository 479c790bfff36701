"""``cascade run`` through real subprocesses against a sqlite store: summary, JSON, cache, failure, resume."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

# Every task appends its name to $FLOW_LOG, so a test counts executions across processes.
FLOW = """
import os, time
import cascade_core as cs

fail = cs.Param("fail", default=False, type=bool)
SLOW = float(os.environ.get("FLOW_SLOW", "0"))


def note(name):
    with open(os.environ["FLOW_LOG"], "a") as log:
        log.write(name + "\\n")


@cs.task(cache=True)
def load(i: int) -> int:
    note("load")
    time.sleep(SLOW)
    return i * i


@cs.task
def add(values: list) -> int:
    note("add")
    return sum(values)


@cs.task
def check(total: int, fail: bool) -> int:
    note("check")
    if fail:
        raise ValueError("bad total on purpose\\nsecond line of the message")
    return total


@cs.task
def publish(total: int) -> dict:
    note("publish")
    return {"total": total}


def pipeline():
    return publish(check(add([load(i) for i in range(4)]), fail))


@cs.task
def letters() -> set:
    note("letters")
    return {"a", "b"}


as_set = letters()
"""


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m cascade_core ARGS`` in ``cwd``; stdout and stderr captured as text."""
    full_env = {**os.environ, "FLOW_LOG": str(cwd / "calls.log"), **(env or {})}
    for name in ("CASCADE_STATE", "CASCADE_CACHE"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def calls(cwd: Path) -> Counter[str]:
    log = cwd / "calls.log"
    return Counter(log.read_text().split()) if log.exists() else Counter()


def as_command(printed: str) -> list[str]:
    """A printed ``cascade ...`` command as argv for this interpreter."""
    words = shlex.split(printed)
    assert words[0] == "cascade"
    return words[1:]


def resume_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("to resume: ")]
    assert len(lines) == 1, stderr
    return lines[0].removeprefix("to resume: ")


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


STORE = ["--state", "sqlite:///store.db", "--cache", "sqlite:///store.db"]


def test_the_second_run_is_served_from_the_cache(flow):
    first = cli(flow, "run", "flow.py:pipeline", *STORE, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert set(report) == {"run_id", "status", "counts", "duration_s", "result"}
    assert report["status"] == "succeeded"
    assert report["result"] == {"total": 14}
    assert report["counts"] == {
        "total": 7,
        "executed": 7,
        "cached": 0,
        "resumed": 0,
        "by_other_drivers": 0,
        "failed": 0,
        "skipped": 0,
    }
    assert calls(flow) == {"load": 4, "add": 1, "check": 1, "publish": 1}

    second = json.loads(cli(flow, "run", "flow.py:pipeline", *STORE, "--json").stdout)
    assert second["run_id"] != report["run_id"]
    assert second["counts"]["cached"] == 4 and second["counts"]["executed"] == 3
    assert calls(flow) == {"load": 4, "add": 2, "check": 2, "publish": 2}


def test_the_text_summary_and_plain_progress_lines(flow):
    done = cli(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "text-1")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("run text-1 succeeded in ") and "7 tasks (7 executed)" in out[0]
    assert out[1] == "result: {'total': 14}"
    # stderr is not a terminal: one plain line per event, no escape sequences.
    assert "run text-1: 7 tasks" in done.stderr
    assert "started  flow.load" in done.stderr and "finished flow.publish" in done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr

    quiet = cli(flow, "run", "flow.py:pipeline", *STORE, "--no-progress")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "(3 executed, 4 cached)" in quiet.stdout


def test_a_result_that_is_not_json_is_given_as_its_repr(flow):
    report = json.loads(cli(flow, "run", "flow.py:as_set", *STORE, "--json").stdout)
    assert report["result"] in ("{'a', 'b'}", "{'b', 'a'}")


def test_a_failure_names_the_task_and_cause_and_its_resume_command_resumes(flow):
    failed = cli(flow, "run", "flow.py:pipeline", *STORE, "--param", "fail=true", "--no-progress")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert "failed in" in failed.stdout and "1 failed" in failed.stdout and "1 skipped" in failed.stdout
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: task 'flow.check' failed: ValueError: bad total on purpose"]
    # Printed once (no duplicate engine log line), one line only (no second line of the message).
    assert failed.stderr.count("bad total on purpose") == 1
    assert "second line" not in failed.stderr
    resume = resume_line(failed.stderr)
    run_id = shlex.split(resume)[-1]
    assert resume == shlex.join(
        ["cascade", "run", "flow.py:pipeline", "--param", "fail=true", *STORE, "--run-id", run_id]
    )
    assert calls(flow) == {"load": 4, "add": 1, "check": 1}

    # Runnable as printed: it resumes (nothing new to do but the failing task, which fails again).
    again = cli(flow, *as_command(resume), "--json")
    assert again.returncode == 1
    report = json.loads(again.stdout)
    assert report["run_id"] == run_id
    assert report["failed_task"] == "flow.check"
    assert report["error"] == "ValueError: bad total on purpose"
    assert report["resume"] == resume
    assert report["counts"]["resumed"] == 5 and report["counts"]["executed"] == 0
    assert calls(flow) == {"load": 4, "add": 1, "check": 2}

    # The user fixes the cause (the param) and runs it again: only the unfinished tasks run.
    fixed = [word.replace("fail=true", "fail=false") for word in as_command(resume)]
    resumed = cli(flow, *fixed, "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["run_id"] == run_id and report["result"] == {"total": 14}
    assert report["counts"]["resumed"] == 5 and report["counts"]["executed"] == 2
    assert calls(flow) == {"load": 4, "add": 1, "check": 3, "publish": 1}


def test_a_failure_in_plain_progress_mode_is_printed_once_as_an_event_and_once_in_the_summary(flow):
    failed = cli(flow, "run", "flow.py:pipeline", *STORE, "--param", "fail=true")
    assert failed.returncode == 1
    assert failed.stderr.count("bad total on purpose") == 2
    assert "failed   flow.check: ValueError: bad total on purpose" in failed.stderr
    assert "skipped  flow.publish: upstream failed: flow.check" in failed.stderr


def test_stores_from_the_environment_stay_out_of_the_resume_command(flow):
    env = {"CASCADE_STATE": "sqlite:///env.db", "CASCADE_CACHE": "sqlite:///env.db"}
    failed = cli(flow, "run", "flow.py:pipeline", "--param", "fail=true", "--workers", "2", env=env)
    assert failed.returncode == 1
    resume = resume_line(failed.stderr)
    assert "--state" not in resume and "--cache" not in resume and "--workers 2" in resume
    assert (flow / "env.db").exists() and not (flow / ".cascade.db").exists()
    fixed = [word.replace("fail=true", "fail=false") for word in as_command(resume)]
    report = json.loads(cli(flow, *fixed, "--json", env=env).stdout)
    assert report["counts"]["resumed"] == 5


def test_the_default_store_is_a_sqlite_file_in_the_working_directory(flow):
    assert cli(flow, "run", "flow.py:pipeline").returncode == 0
    assert (flow / ".cascade.db").exists()
    listed = json.loads(cli(flow, "runs", "list", "--json").stdout)
    assert len(listed) == 1


def test_a_module_target_imports_from_the_working_directory(flow):
    done = cli(flow, "run", "flow:pipeline", *STORE, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == {"total": 14}


def test_a_file_named_like_an_imported_module_is_refused(tmp_path):
    (tmp_path / "json.py").write_text(FLOW)
    done = cli(tmp_path, "run", "json.py:pipeline", *STORE)
    assert done.returncode == 2
    assert done.stderr.startswith("error: json.py would be imported as module 'json'")
    assert len(done.stderr.splitlines()) == 1


def test_a_file_in_another_directory_imports_its_siblings(tmp_path):
    pkg = tmp_path / "flows"
    pkg.mkdir()
    (pkg / "helpers.py").write_text("FACTOR = 3\n")
    (pkg / "main_flow.py").write_text(
        "import cascade_core as cs\nimport helpers\n\n@cs.task\ndef triple(x: int) -> int:\n"
        "    return x * helpers.FACTOR\n\ntarget = triple(5)\n"
    )
    done = cli(tmp_path, "run", "flows/main_flow.py:target", *STORE, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == 15


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_an_interrupted_run_prints_its_resume_command(flow):
    env = {**os.environ, "FLOW_LOG": str(flow / "calls.log"), "FLOW_SLOW": "0.5"}
    args = [sys.executable, "-m", "cascade_core", "run", "flow.py:pipeline", *STORE, "--workers", "1"]
    proc = subprocess.Popen(args, cwd=flow, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while calls(flow)["load"] < 2:  # the second load has started: one result is stored
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: run " in err
    resume = resume_line(err)
    report = json.loads(cli(flow, *as_command(resume), "--json").stdout)
    assert report["status"] == "succeeded"
    assert report["counts"]["resumed"] >= 1
    # Two loads had started, the first one finished and was stored: only it is not redone.
    assert report["counts"]["resumed"] == 1
    assert calls(flow)["load"] == 2 + 3
