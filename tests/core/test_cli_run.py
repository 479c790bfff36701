"""``cascade run`` through real subprocesses against a sqlite store: summary, JSON, cache, failure, resume."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cascade_test_cli import FLOW_HEAD, calls, cli, interrupt_after

# Every task appends its name to $FLOW_LOG, so a test counts executions across processes.
FLOW = (
    FLOW_HEAD
    + """import time

SLOW = float(os.environ.get("FLOW_SLOW", "0"))




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
)


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
    # stderr is not a terminal: the start line and the final counts, no line per task, no escapes.
    lines = done.stderr.splitlines()
    assert lines[0] == "run text-1: 7 tasks"
    assert lines[-1].startswith("7/7 done  0 running  0 cached  0 resumed  0 failed  elapsed ")
    assert len(lines) == 2, done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr

    # -v adds one plain line per event.
    verbose = cli(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "text-2", "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stderr.count("] cached   flow.load") == 4 and verbose.stderr.count("] started  flow.load") == 0
    assert "] finished flow.publish (" in verbose.stderr
    fresh = cli(flow, "run", "flow.py:pipeline", "--state", "sqlite:///other.db", "--cache", "memory://", "--verbose")
    assert fresh.stderr.count("] started  flow.load") == 4 and fresh.stderr.count("] finished flow.load (") == 4

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
    assert "skipped  flow" not in failed.stderr  # counted in the final line, named only with -v
    assert "5/7 done  0 running  0 cached  0 resumed  1 failed  1 skipped  elapsed " in failed.stderr
    verbose = cli(flow, "run", "flow.py:pipeline", *STORE, "--param", "fail=true", "-v")
    assert "skipped  flow.publish: upstream failed: flow.check" in verbose.stderr
    assert verbose.stderr.count("bad total on purpose") == 2


# 2,000 calls of a task that sleeps (the run lasts at least FAN_SLOW * 2000 / 4 workers), one of
# which fails twice (a retry, then a failure), and their sum.
FAN_OUT = """
import os, time
import cascade_core as cs

SLOW = float(os.environ.get("FAN_SLOW", "0"))


@cs.task(retries=1)
def square(i: int) -> int:
    time.sleep(SLOW)
    if i == 1234:
        with open(os.environ["FLOW_LOG"], "a") as log:
            log.write("attempt\\n")
        raise ValueError(f"no square for {i}")
    return i * i


@cs.task
def total(values: list) -> int:
    return sum(values)


pipeline = total([square(i) for i in range(2000)])
"""


def run_to_file(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    """``cascade run`` with stderr to a file, as ``2>log`` does: exit code, stdout, stderr, run seconds."""
    full_env = {**os.environ, "FLOW_LOG": str(cwd / "calls.log"), **(env or {})}
    with open(cwd / "stderr.log", "w") as err:
        done = subprocess.run(
            [sys.executable, "-m", "cascade_core", "run", *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=120,
        )
    summary = done.stdout.splitlines()[0]
    seconds = float(summary.split(" in ", 1)[1].split("s:", 1)[0])
    return done.returncode, done.stdout, (cwd / "stderr.log").read_text(), seconds


def test_a_2001_task_fan_out_off_a_terminal_prints_a_bounded_log_that_names_the_failure(tmp_path):
    (tmp_path / "fan.py").write_text(FAN_OUT)
    code, out, err, seconds = run_to_file(tmp_path, "fan.py:pipeline", *STORE, "--run-id", "fan")
    assert code == 1 and "2001 tasks (1999 executed, 1 failed, 1 skipped)" in out
    assert (tmp_path / "calls.log").read_text().split() == ["attempt", "attempt"]
    lines = err.splitlines()
    assert lines[0] == "run fan: 2001 tasks"
    retry = "warning: task fan.square failed (attempt 1 of 2): ValueError: no square for 1234; retrying in "
    assert sum(line.startswith(retry) for line in lines) == 1, err
    assert sum(line.endswith("] failed   fan.square: ValueError: no square for 1234") for line in lines) == 1, err
    assert "error: task 'fan.square' failed: ValueError: no square for 1234" in lines
    assert resume_line(err).endswith("--run-id fan")
    assert not any(word in err for word in ("] started  ", "] finished ", "] skipped  "))
    counts = [line for line in lines if " done  " in line]
    assert counts[-1].startswith("1999/2001 done  0 running  0 cached  0 resumed  1 failed  1 skipped  elapsed ")
    # Start, retry, failure, final counts, error, resume: 6, plus a counts line every 5 seconds.
    assert len(lines) <= 6 + seconds // 5 + 1, err

    # -v: one line per event again (2,000 started, 1,999 finished, the failure, the skipped sum).
    code, _, err, _ = run_to_file(tmp_path, "fan.py:pipeline", *STORE, "--run-id", "fan-v", "-v")
    assert code == 1
    assert err.count("] started  fan.square") == 2000 and err.count("] finished fan.square") == 1999
    assert err.count("] skipped  fan.total: upstream failed: fan.square") == 1


def test_off_a_terminal_the_counts_are_printed_at_a_steady_interval(tmp_path):
    (tmp_path / "fan.py").write_text(FAN_OUT)
    code, _, err, seconds = run_to_file(
        tmp_path, "fan.py:pipeline", *STORE, "--workers", "4", "--progress-interval", "0.25", env={"FAN_SLOW": "0.003"}
    )
    assert code == 1
    counts = [line for line in err.splitlines() if " done  " in line]
    # The tasks take at least 2,000 * 3 ms / 4 workers = 1.5 s: five ticks and the final line.
    assert seconds >= 1.5 and len(counts) >= 4, err
    assert len(counts) <= seconds / 0.25 + 2, err
    done = [int(line.split("/", 1)[0]) for line in counts]
    assert done == sorted(done) and done[0] < 1999 and done[-1] == 1999, err


def test_a_bad_progress_interval_is_refused(flow):
    done = cli(flow, "run", "flow.py:pipeline", *STORE, "--progress-interval", "0")
    assert done.returncode == 2
    assert done.stderr.startswith("error: argument --progress-interval: must be a number of seconds from 0.01 to 3600")
    assert not (flow / "store.db").exists()


def test_a_failed_run_on_a_memory_state_says_it_cannot_be_resumed(flow):
    failed = cli(flow, "run", "flow.py:pipeline", "--state", "memory://", "--param", "fail=true", "--run-id", "m1")
    assert failed.returncode == 1
    assert "to resume" not in failed.stderr
    notes = [line for line in failed.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: run m1 cannot be resumed: its state memory:// lived in this process only; "
        "give --state sqlite:///FILE.db (or another lasting store) to make a run resumable"
    ]
    report = json.loads(cli(flow, "run", "flow.py:pipeline", "--state", "memory://", "-p", "fail=1", "--json").stdout)
    assert report["status"] == "failed" and report["resume"] is None


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
    err, _ = interrupt_after(proc, flow, "load", 2)  # the second load has started: one result is stored
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
