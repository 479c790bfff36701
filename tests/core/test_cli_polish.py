"""CLI polish of issue 11, on sqlite: integer counts, JSON errors, ``cache clear`` (store named,
empty ``--task`` refused), singular and plural, 0-column terminals, function targets that take
``--param``, and runs whose driver died shown as ``abandoned``."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cascade_core import BackendURI
from cascade_core._plugins.registry import registry
from cascade_core.cli._output import describe_counts, plural
from cascade_core.cli._progress import LINES, LIVE, Progress, _columns

FLOW = """
from __future__ import annotations

import os
import cascade_core as cs

fail = cs.Param("fail", default=False, type=bool)


def note(name):
    with open(os.environ["FLOW_LOG"], "a") as log:
        log.write(name + "\\n")


@cs.task(cache=True)
def load(i: int) -> int:
    note("load")
    return i * 10


@cs.task
def check(values: list, fail: bool, label: str) -> str:
    note("check")
    if fail:
        raise ValueError("values look wrong")
    return f"{label}={sum(values)}"


@cs.task
def explode() -> int:
    note("explode")
    raise RuntimeError("boom")


def pipeline():
    return check([load(i) for i in range(2)], fail, "sum")


def sized(n: int, label: str = "sum", loud: bool = False, scale: float = 1.0, limit: int | None = None):
    values = [load(i) for i in range(n if limit is None else min(n, limit))]
    return check(values, fail, f"{label.upper() if loud else label}*{scale}")


def listy(values: list[int] = [1]):
    return check([load(i) for i in values], fail, "list")


def single():
    return load(7)


def failing():
    return explode()
"""

STATE = "sqlite:///runs.db"
STORE = ["--state", STATE, "--cache", STATE]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE")}
    env["FLOW_LOG"] = str(cwd / "calls.log")
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def ok(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = cli(cwd, *args)
    assert done.returncode == 0, done.stderr
    return done


def calls(cwd: Path) -> Counter[str]:
    log = cwd / "calls.log"
    return Counter(log.read_text().split()) if log.exists() else Counter()


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


# -- 1. integers in --json -----------------------------------------------------------------------


def test_runs_list_and_show_print_counts_as_integers_like_run(flow):
    report = json.loads(ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "123", "--json").stdout)
    assert report["counts"]["total"] == 3 and report["counts"]["executed"] == 3

    (listed,) = json.loads(ok(flow, "runs", "list", "--state", STATE, "--json").stdout)
    assert listed["run_id"] == "123"  # an id made of digits stays a string
    assert listed["tasks"] == 3 and listed["results"] == 3
    assert {key[6:]: value for key, value in listed.items() if key.startswith("count_")} == report["counts"]
    assert listed["status"] == "succeeded" and listed["target"] == "flow.check"

    info = json.loads(ok(flow, "runs", "show", "123", "--state", STATE, "--json").stdout)["info"]
    assert info["tasks"] == 3 and info["count_executed"] == 3 and info["count_failed"] == 0
    assert all(type(value) is int for key, value in info.items() if key.startswith("count_"))


# -- 2. --json errors are JSON ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error_type", "starts"),
    [
        (["backends", "check", "nosuch://", "--json"], "BackendNotFoundError", "unknown backend scheme 'nosuch'"),
        (["backends", "check", "::bad", "--json"], "InvalidURIError", "malformed backend URI '::bad'"),
        (["backends", "check", "--json"], "UsageError", "the following arguments are required: uri"),
        (["runs", "list", "--state", "nosuch://x", "--json"], "BackendNotFoundError", "unknown backend scheme"),
        (["runs", "show", "nope", "--state", STATE, "--json"], "UsageError", "no run 'nope' in sqlite:///runs.db"),
        (["run", "flow.py:pipeline", *STORE, "-p", "fail=maybe", "--json"], "ParamError", "param 'fail' expects"),
    ],
)
def test_json_errors_are_a_json_object_on_stdout_with_the_usual_exit_code(flow, args, error_type, starts):
    done = cli(flow, *args)
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert set(error) == {"error", "error_type", "exit_code"}
    assert error["error_type"] == error_type and error["exit_code"] == 2
    assert error["error"].startswith(starts) and "\n" not in error["error"]
    assert done.stderr == f"error: {error['error']}\n"  # the same line for people, on stderr


def test_backends_check_json_of_a_good_uri_is_the_report(flow):
    ok(flow, "run", "flow.py:pipeline", "--state", "sqlite:///check.db", "--cache", "memory://")
    before = (flow / "check.db").read_bytes()
    report = json.loads(ok(flow, "backends", "check", "sqlite:///check.db", "--json").stdout)
    assert report["ok"] is True and {check["backend"] for check in report["checks"]} == {"state", "cache"}
    assert {check["detail"] for check in report["checks"]} == {f"{flow / 'check.db'}, schema version 1"}
    # The probe was deleted again: the store lists the same single run.
    assert len(json.loads(ok(flow, "runs", "list", "--state", "sqlite:///check.db", "--json").stdout)) == 1
    assert len((flow / "check.db").read_bytes()) == len(before)


def test_backends_check_of_a_missing_sqlite_file_creates_nothing_and_says_so(flow):
    done = cli(flow, "backends", "check", "sqlite:///x.db")
    assert done.returncode == 1 and done.stderr == ""
    missing = f"sqlite database {flow / 'x.db'} does not exist (a check creates nothing): the first run with this URI"
    lines = done.stdout.splitlines()
    assert [line.split(": FAILED: ")[0] for line in lines] == ["sqlite:///x.db state", "sqlite:///x.db cache"]
    assert all(line.split(": FAILED: ")[1].startswith(missing + " creates it, or point") for line in lines), lines
    report = json.loads(cli(flow, "backends", "check", "sqlite:///sub/x.db", "--json").stdout)
    assert report["ok"] is False
    assert all(f"creates it once directory {flow / 'sub'} exists" in check["error"] for check in report["checks"])
    assert sorted(path.name for path in flow.iterdir()) == ["flow.py"]  # no x.db, no x.db-wal, no sub/


def test_backends_check_writes_nothing_into_a_file_that_is_not_a_cascade_database(flow):
    import sqlite3

    (flow / "empty.db").touch()
    with sqlite3.connect(flow / "other.db") as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    before = {name: (flow / name).read_bytes() for name in ("empty.db", "other.db")}
    empty = cli(flow, "backends", "check", "sqlite:///empty.db")
    assert empty.returncode == 1 and f"sqlite database {flow / 'empty.db'} is empty: a check writes" in empty.stdout
    other = cli(flow, "backends", "check", "sqlite:///other.db")
    assert other.returncode == 1
    assert f"sqlite database {flow / 'other.db'} is not a Cascade database (its tables: notes)" in other.stdout
    assert {name: (flow / name).read_bytes() for name in before} == before
    assert sorted(path.name for path in flow.iterdir()) == ["empty.db", "flow.py", "other.db"]


# -- 3. and 4. cache clear -----------------------------------------------------------------------


def test_cache_clear_names_the_store_and_counts_in_words(flow):
    ok(flow, "run", "flow.py:pipeline", *STORE)
    ok(flow, "run", "flow.py:single", *STORE)
    done = ok(flow, "cache", "clear", "--cache", STATE, "--task", "flow.load")
    assert done.stdout == "removed 3 cache entries of task flow.load from sqlite:///runs.db\n"
    ok(flow, "run", "flow.py:single", *STORE)
    done = ok(flow, "cache", "clear", "--cache", STATE)
    assert done.stdout == "removed 1 cache entry from sqlite:///runs.db\n"
    done = ok(flow, "cache", "clear", "--cache", STATE, "--task", "flow.load")
    assert done.stdout == "removed 0 cache entries of task flow.load from sqlite:///runs.db\n"


@pytest.mark.parametrize("task", ["", " ", "\t\n"])
def test_cache_clear_with_an_empty_task_is_a_usage_error_and_deletes_nothing(flow, task):
    ok(flow, "run", "flow.py:pipeline", *STORE)
    assert calls(flow)["load"] == 2
    done = cli(flow, "cache", "clear", "--cache", STATE, "--task", task)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "error: --task is empty: give a task's full name (as 'cascade runs show' prints it), or omit --task\n"
    )
    # Every entry is still there: a second run computes nothing cached again, and clearing finds them.
    report = json.loads(ok(flow, "run", "flow.py:pipeline", *STORE, "--json").stdout)
    assert report["counts"]["cached"] == 2 and calls(flow)["load"] == 2
    done = ok(flow, "cache", "clear", "--cache", STATE, "--task", "flow.load")
    assert done.stdout.startswith("removed 2 cache entries of task flow.load ")


# -- 5. singular and plural ----------------------------------------------------------------------


def test_one_task_is_singular_in_progress_summary_and_show(flow):
    done = ok(flow, "run", "flow.py:single", *STORE, "--run-id", "one")
    assert "run one: 1 task\n" in done.stderr
    assert done.stdout.startswith("run one succeeded in ") and ": 1 task (1 executed)\n" in done.stdout

    done = cli(flow, "run", "flow.py:failing", *STORE, "--run-id", "bad")
    assert done.returncode == 1
    assert ": 1 task (1 failed)\n" in done.stdout
    header = ok(flow, "runs", "show", "bad", "--state", STATE).stdout.splitlines()[0]
    assert header.startswith("run bad: failed, target flow.explode, 1 task (1 failed), created ")

    header = ok(flow, "runs", "show", "one", "--state", STATE).stdout.splitlines()[0]
    assert header.startswith("run one: succeeded, target flow.load, 1 task (1 executed), created ")
    done = ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "three")
    assert ": 3 tasks (3 executed)\n" in done.stdout


def test_counts_render_generically_so_by_other_drivers_reads_well(flow):
    assert plural(1, "task") == "1 task" and plural(0, "task") == "0 tasks" and plural("?", "task") == "? tasks"
    assert plural(1, "cache entry", "cache entries") == "1 cache entry"
    counts = {"total": 5, "executed": 1, "cached": 0, "resumed": 0, "by_other_drivers": 4, "failed": 0}
    assert describe_counts(counts) == "1 executed, 4 by other drivers"
    assert describe_counts({"total": 0}) == ""

    # A run whose info holds the count (as the engine writes it) shows it in `runs show`,
    # in the engine's order even though sqlite returns the keys sorted.
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "shared")
    factory = registry.state_factory(BackendURI.parse(f"sqlite:///{flow / 'runs.db'}"))
    try:
        backend = factory("shared")
        backend.set_run_info({"count_executed": "1", "count_by_other_drivers": "2"})
        backend.close()
    finally:
        factory.close()
    header = ok(flow, "runs", "show", "shared", "--state", STATE).stdout.splitlines()[0]
    assert "3 tasks (1 executed, 2 by other drivers), created " in header


def test_progress_counts_tasks_done_by_other_drivers_as_done():
    stream = io.StringIO()
    progress = Progress(stream, LINES, verbose=True)
    progress.cascade_run_started(run_id="shared", tasks=3)
    progress.cascade_task_started(task="flow.load")
    progress.cascade_task_finished(task="flow.load", duration=0.01, cached=False)
    progress.cascade_task_skipped(task="flow.load", reason="done by another driver")
    progress.cascade_task_skipped(task="flow.load", reason="done by another driver")
    assert progress.render().startswith("3/3 done  0 running  0 cached  0 resumed  0 failed  2 by other drivers  ")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "run shared: 3 tasks"
    assert lines[-1].endswith("] done     flow.load (by another driver)")


# -- 6. a terminal of 0 columns ------------------------------------------------------------------


def test_a_terminal_reporting_0_columns_gets_an_80_column_progress_line():
    master, slave = pty.openpty()  # a new pseudo-terminal reports 0 x 0 until someone sets a size
    stream = os.fdopen(slave, "w")
    try:
        assert os.get_terminal_size(slave).columns == 0
        assert _columns(stream) == 80
        progress = Progress(stream, LIVE)
        progress.total = 1000
        progress.counts.update(done=500, running=12, cached=300, resumed=100, failed=3, skipped=2)
        line = progress.render()
        assert len(line) > 79
        progress.write_line("above")
        progress._draw_locked()
        stream.write("\n#end#\n")
        stream.flush()
        shown = b""
        while b"#end#" not in shown:  # the terminal may hand the bytes over in pieces
            assert select.select([master], [], [], 10)[0], shown
            shown += os.read(master, 4096)
    finally:
        stream.close()
        os.close(master)
    drawn = shown.decode().split("#end#")[0].rstrip("\r\n").rsplit("\r", 1)[1]  # the last redraw
    assert len(drawn) == 79  # one column spare, so that the line never wraps
    assert drawn == line[:79] or drawn.split("elapsed")[0] == line.split("elapsed")[0]


def test_cascade_run_on_a_0_column_terminal_shows_the_whole_counts_line(flow):
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE", "COLUMNS")}
    env["FLOW_LOG"] = str(flow / "calls.log")
    process = subprocess.Popen(
        [sys.executable, "-m", "cascade_core", "run", "flow.py:pipeline", *STORE, "--run-id", "tty"],
        cwd=flow,
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    stdout, _ = process.communicate(timeout=60)
    reader.join(timeout=10)
    os.close(master)
    screen = b"".join(chunks).decode().replace("\r\n", "\n")
    assert process.returncode == 0, screen
    assert stdout.startswith("run tty succeeded")
    final = screen.rstrip("\n").rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]
    # Cut at 20 characters this was "3/3 done  0 running ".
    assert final.startswith("3/3 done  0 running  0 cached  0 resumed  0 failed  elapsed "), screen


# -- 7. a function target takes --param ----------------------------------------------------------


def test_function_parameters_are_filled_from_param_and_converted(flow):
    report = json.loads(
        ok(flow, "run", "flow.py:sized", *STORE, "-p", "n=3", "-p", "label=tot", "-p", "loud=yes", "--json").stdout
    )
    assert report["result"] == "TOT*1.0=30" and report["counts"]["executed"] == 4
    assert calls(flow) == {"load": 3, "check": 1}
    report = json.loads(ok(flow, "run", "flow.py:sized", *STORE, "-p", "n=5", "-p", "scale=2.5", "--json").stdout)
    assert report["result"] == "sum*2.5=100" and report["counts"]["cached"] == 3
    assert calls(flow)["load"] == 5
    report = json.loads(ok(flow, "run", "flow.py:sized", *STORE, "-p", "n=5", "-p", "limit=2", "--json").stdout)
    assert report["result"] == "sum*1.0=10"
    # A task itself is a function returning a lazy result: its parameters fill the same way.
    assert json.loads(ok(flow, "run", "flow.py:load", *STORE, "-p", "i=4", "--json").stdout)["result"] == 40


def test_graph_params_still_work_beside_function_parameters_and_resume_repeats_both(flow):
    done = cli(flow, "run", "flow.py:sized", *STORE, "-p", "n=2", "-p", "fail=true", "--run-id", "mix")
    assert done.returncode == 1
    assert "to resume: cascade run flow.py:sized --param n=2 --param fail=true " in done.stderr
    assert calls(flow) == {"load": 2, "check": 1}
    done = ok(flow, "run", "flow.py:sized", *STORE, "-p", "n=2", "-p", "fail=false", "--run-id", "mix", "--json")
    report = json.loads(done.stdout)
    assert report["result"] == "sum*1.0=10" and report["counts"]["resumed"] == 2
    assert calls(flow) == {"load": 2, "check": 2}


@pytest.mark.parametrize(
    ("target", "params", "message"),
    [
        (
            "sized",
            ["n=eight"],
            "param 'n' expects int, and 'eight' does not convert: invalid literal for int() with base 10: 'eight'",
        ),
        ("sized", ["n=2", "loud=perhaps"], "param 'loud' expects bool, and 'perhaps' does not convert: "),
        ("sized", ["n=2", "limit=1.5"], "param 'limit' expects int, and '1.5' does not convert: "),
        ("sized", [], "calling flow.py:sized() needs its parameter 'n': pass --param n=VALUE"),
        (
            "listy",
            ["values=1,2"],
            "parameter 'values' of flow.py:listy is annotated list[int]: --param converts only to int, float, "
            "bool or str; give the function a parameter of one of these types",
        ),
        ("sized", ["n=2", "colour=red"], "unknown param 'colour'; this graph's params are: fail"),
    ],
)
def test_a_bad_function_parameter_is_one_line_naming_it_and_runs_nothing(flow, target, params, message):
    args = [arg for param in params for arg in ("-p", param)]
    done = cli(flow, "run", f"flow.py:{target}", *STORE, *args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {message}") and done.stderr.count("\n") == 1, done.stderr
    assert calls(flow) == Counter()


# -- 8. abandoned runs ---------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def write_runs(uri: str, now: datetime) -> None:
    """Runs as drivers leave them: one whose lease expired, one alive, one from a backend without leases."""
    factory = registry.state_factory(BackendURI.parse(uri))
    try:
        for run_id, info in {
            "dead": {
                "driver": "host gone pid 41",
                "driver_started": _iso(now - timedelta(minutes=5)),
                "lease_expires": _iso(now - timedelta(seconds=90)),
            },
            "alive": {
                "driver": "host here pid 42",
                "driver_started": _iso(now - timedelta(minutes=1)),
                "lease_expires": _iso(now + timedelta(minutes=10)),
            },
            "leaseless": {},
            "done": {"lease_expires": _iso(now - timedelta(days=1))},
        }.items():
            backend = factory(run_id)
            status = "succeeded" if run_id == "done" else "running"
            backend.set_run_info({"status": status, "tasks": "4", "target": "flow.check", **info})
            backend.close()
    finally:
        factory.close()


def check_abandoned(cli_run, state: str, now: datetime) -> None:
    """Shared with the redis test: ``cli_run(*args)`` returns a CompletedProcess."""
    listed = json.loads(cli_run("runs", "list", "--state", state, "--json").stdout)
    by_id = {run["run_id"]: run for run in listed}
    assert {run_id: run["status"] for run_id, run in by_id.items()} == {
        "dead": "abandoned",
        "alive": "running",
        "leaseless": "running",
        "done": "succeeded",
    }
    since = _iso(now - timedelta(seconds=90))
    assert by_id["dead"]["abandoned_since"] == since and by_id["dead"]["tasks"] == 4
    assert "abandoned_since" not in by_id["alive"] and "abandoned_since" not in by_id["done"]

    table = cli_run("runs", "list", "--state", state).stdout.splitlines()
    statuses = {line.split()[0]: line.split()[1] for line in table[1:]}
    assert statuses == {"dead": "abandoned", "alive": "running", "leaseless": "running", "done": "succeeded"}

    shown = json.loads(cli_run("runs", "show", "dead", "--state", state, "--json").stdout)
    assert shown["info"]["status"] == "abandoned" and shown["info"]["abandoned_since"] == since
    assert shown["info"]["driver"] == "host gone pid 41"
    lines = cli_run("runs", "show", "dead", "--state", state).stdout.splitlines()
    assert lines[0].startswith("run dead: abandoned, target flow.check, 4 tasks, created ")
    assert lines[1] == (
        f"abandoned since {since}: its driver (host gone pid 41) stopped renewing its run lease; "
        "rerun the target with --run-id dead to resume"
    )
    lines = cli_run("runs", "show", "alive", "--state", state).stdout.splitlines()
    assert lines[0].startswith("run alive: running, ")
    assert lines[1] == (
        f"driver: host here pid 42 since {_iso(now - timedelta(minutes=1))}, "
        f"run lease until {_iso(now + timedelta(minutes=10))}"
    )
    lines = cli_run("runs", "show", "leaseless", "--state", state).stdout.splitlines()
    assert lines[0].startswith("run leaseless: running, ") and lines[1].startswith("TASK ")
    shown = json.loads(cli_run("runs", "show", "leaseless", "--state", state, "--json").stdout)
    assert shown["info"]["status"] == "running" and "abandoned_since" not in shown["info"]


def test_a_running_run_whose_lease_expired_is_shown_abandoned(flow):
    now = datetime.now(timezone.utc)
    write_runs(f"sqlite:///{flow / 'runs.db'}", now)
    check_abandoned(lambda *args: ok(flow, *args), STATE, now)


KILLED_DRIVER = """
import sys, time
from pathlib import Path
import cascade_core as cs


@cs.task
def hang() -> int:
    Path("started").write_text("yes")
    time.sleep(120)
    return 1


cs.run(hang(), state_backend=sys.argv[1], run_id="killed")
"""


def sigkill_a_driver(cwd: Path, state: str) -> None:
    """Start a driver on a task that hangs, and SIGKILL it mid-task."""
    (cwd / "driver.py").write_text(KILLED_DRIVER)
    process = subprocess.Popen([sys.executable, "driver.py", state], cwd=cwd)
    try:
        deadline = time.monotonic() + 30
        while not (cwd / "started").exists():
            assert process.poll() is None and time.monotonic() < deadline, "the driver never started its task"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def check_killed_driver(cli_run, state: str) -> None:
    """After the SIGKILL: ``abandoned`` at once on this machine (its process is gone), although its
    run lease has not expired; since its last heartbeat (the run info's ``updated``)."""
    (run,) = json.loads(cli_run("runs", "list", "--state", state, "--json").stdout)
    assert run["driver"].startswith("host ") and " pid " in run["driver"]
    assert datetime.now(timezone.utc) < datetime.fromisoformat(run["lease_expires"])  # still live: 30 s
    assert run["status"] == "abandoned" and run["abandoned_reason"] == "driver process gone", run
    assert run["abandoned_since"] == run["updated"]
    lines = cli_run("runs", "show", "killed", "--state", state).stdout.splitlines()
    assert lines[0].startswith("run killed: abandoned, target ")
    assert lines[1] == (
        f"abandoned since {run['updated']}: its driver ({run['driver']}) is gone; "
        "rerun the target with --run-id killed to resume"
    )


def test_a_sigkilled_driver_shows_abandoned_at_once(tmp_path):
    sigkill_a_driver(tmp_path, STATE)
    check_killed_driver(lambda *args: ok(tmp_path, *args), STATE)
