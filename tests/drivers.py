"""Helpers for tests that start several driver processes on one store (sqlite file or redis).

The workflow below logs every start and finish of every task to the file named by
``CASCADE_TEST_LOG`` (one line per event, appended atomically), so a test can count
executions across processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

WORKFLOW = """
import os, sys, time
import cascade_core as cs

LOG = os.environ["CASCADE_TEST_LOG"]
SLOW = float(os.environ.get("CASCADE_TEST_SLOW", "0.2"))


def note(event):
    with open(LOG, "a") as log:
        log.write(f"{event} {os.getpid()}\\n")


@cs.task(name="leaf")
def leaf(i):
    note(f"start leaf-{i}")
    time.sleep(SLOW)
    note(f"end leaf-{i}")
    return i


@cs.task(name="shared", cache=True)
def shared(x):
    note("start shared")
    time.sleep(SLOW * 3)
    note("end shared")
    return x * 100


@cs.task(name="total")
def total(xs, extra):
    note("start total")
    return sum(xs) + extra


@cs.task(name="widths")
def widths(width):
    return list(range(width))


def graph(width):
    if os.environ.get("CASCADE_TEST_MAP") == "1":  # the same calls, from a list known at run time
        return total(leaf.map(widths(width)), shared(7))
    return total([leaf(i) for i in range(width)], shared(7))


if __name__ == "__main__":
    state, cache, run_id, width = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ttl = float(os.environ.get("CASCADE_TEST_LEASE_TTL", "30"))
    leases = os.environ.get("CASCADE_TEST_LEASES", "1") == "1"
    workers = int(os.environ.get("CASCADE_TEST_WORKERS", "4"))
    engine = cs.Engine(state, cache, leases=leases, lease_ttl=ttl, max_workers=workers)
    target = graph(width)
    go = os.environ.get("CASCADE_TEST_GO")
    if go:  # start together: say so, then wait for the test's signal
        note("ready")
        while not os.path.exists(go):
            time.sleep(0.005)
    try:
        report = engine.execute(target, run_id=run_id)
    except cs.CascadeError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)
    if report.error is not None:
        raise report.error
    print(report.value, flush=True)
    if os.environ.get("CASCADE_TEST_COUNTS") == "1":
        import json

        print(json.dumps(report.counts), flush=True)
"""


def load_workflow(script: Path, name: str = "driver_workflow_here"):
    """The workflow as a module of this process, for an in-process driver. The caller sets
    ``CASCADE_TEST_LOG`` (and ``CASCADE_TEST_SLOW``) first, with monkeypatch.setenv."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_workflow(directory: Path) -> Path:
    path = directory / "driver_workflow.py"
    path.write_text(WORKFLOW)
    return path


def start_driver(
    script: Path, log: Path, state: str, cache: str, run_id: str, width: int, **env: str
) -> subprocess.Popen[str]:
    environment = {**os.environ, "CASCADE_TEST_LOG": str(log), **env}
    return subprocess.Popen(
        [sys.executable, str(script), state, cache, run_id, str(width)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=script.parent,
    )


def starts_by_driver(log: Path) -> Counter[str]:
    """How many tasks each driver process (by pid) started."""
    if not log.exists():
        return Counter()
    return Counter(line.rsplit(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith("start "))


def events(log: Path) -> Counter[str]:
    """How many times each event ("start leaf-0", "end shared", ...) happened, across processes."""
    if not log.exists():
        return Counter()
    return Counter(line.rsplit(" ", 1)[0] for line in log.read_text().splitlines() if line)


def wait_for(log: Path, event: str, timeout: float = 30.0, count: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while events(log)[event] < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{event!r} never happened; log: {log.read_text() if log.exists() else ''}")
        time.sleep(0.02)


# -- the run lease: the scenarios of tests/core/test_run_lease.py, on sqlite and a real redis-server

CLI_FLOW = """
import os, time
import cascade_core as cs


def note(event):
    with open(os.environ["LOG"], "a") as log:
        log.write(f"{event} {os.getpid()}\\n")


@cs.task(cache=True)
def slow(i):
    note(f"start slow-{i}")
    time.sleep(float(os.environ.get("SLOW", "0.2")))
    note(f"end slow-{i}")
    return i


@cs.task
def total(xs):
    note("start total")
    return sum(xs)


target = total([slow(i) for i in range(2)])
"""


def holder(pid: int) -> str:
    """How run info and RunInUseError name the driver process ``pid`` of this machine."""
    import socket

    return f"host {socket.gethostname()} pid {pid}"


def run_info(uri: str, run_id: str) -> dict[str, str]:
    """The stored info of one run, read through the state backend of ``uri``."""
    from cascade_core._plugins.resolve import resolve_state

    spec = resolve_state(uri)
    try:
        backend = spec.open(run_id)
        try:
            return backend.get_run_info()
        finally:
            backend.close()
    finally:
        spec.close()


def stamp_seconds(text: str) -> float:
    """Unix time of an ISO-8601 stamp such as run info's ``lease_expires``."""
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def cli(directory: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """``cascade ARGS`` in ``directory`` (as ``python -m cascade_core``), started, not awaited."""
    from cascade_test_cli import start

    return start(directory, *args, **env)


def second_driver_is_refused(directory: Path, uri: str, monkeypatch) -> None:
    """Default drivers: a second one on a live run id stops within a second naming the holder;
    no task runs twice."""
    import re

    import pytest

    import cascade_core as cs

    script, log = write_workflow(directory), directory / "events.log"
    first = start_driver(script, log, uri, uri, "solo", 2, CASCADE_TEST_LEASES="0", CASCADE_TEST_SLOW="1")
    wait_for(log, "start leaf-0")
    monkeypatch.setenv("CASCADE_TEST_LOG", str(log))
    workflow = load_workflow(script)
    started = time.monotonic()
    with pytest.raises(cs.RunInUseError) as refused:
        cs.Engine(uri, uri).execute(workflow.graph(2), run_id="solo")
    assert time.monotonic() - started < 1.0
    error = refused.value
    assert (error.run_id, error.holder, error.shared) == ("solo", holder(first.pid), False)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
    assert re.fullmatch(
        rf"run 'solo' is already being run by {re.escape(holder(first.pid))} \(since {stamp}\): wait for it to "
        r"finish, or start every driver with leases=True \(cascade run --leases\) to share the work "
        rf"\(if it died, the run is free once its lease expires, in \d+ s, at {stamp}\)",
        str(error),
    ), str(error)
    assert run_info(uri, "solo")["driver"] == holder(first.pid)  # the refused driver wrote nothing
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert out.strip() == "701"
    counts = events(log)
    assert counts["start leaf-0"] == counts["start leaf-1"] == counts["start shared"] == counts["start total"] == 1
    assert set(starts_by_driver(log)) == {str(first.pid)}


def second_cli_driver_is_refused(directory: Path, state: str) -> None:
    """The same through ``cascade run``: one error line naming the holder, exit 1, nothing run twice."""
    (directory / "flow.py").write_text(CLI_FLOW)
    log = directory / "events.log"
    args = ("run", "flow.py:target", "--state", state, "--cache", state, "--run-id", "cli-solo", "--no-progress")
    first = cli(directory, *args, LOG=str(log), SLOW="1.5")
    wait_for(log, "start slow-0")
    second = cli(directory, *args, LOG=str(log))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 1, (out, err)
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: run 'cli-solo' is already being run by {holder(first.pid)} (since "), err
    assert "cascade run --leases" in err and "Traceback" not in err
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    counts = events(log)
    assert counts["start slow-0"] == counts["start slow-1"] == counts["start total"] == 1, counts


def sharing_drivers_split_the_work(directory: Path, uri: str) -> None:
    """leases=True: three drivers of two workers on 12 slow-ish ready tasks each run some, none twice."""
    import json

    script, log, go = write_workflow(directory), directory / "events.log", directory / "go"
    env = {"CASCADE_TEST_WORKERS": "2", "CASCADE_TEST_SLOW": "0.3", "CASCADE_TEST_GO": str(go)}
    procs = [start_driver(script, log, uri, uri, "split", 12, CASCADE_TEST_COUNTS="1", **env) for _ in range(3)]
    wait_for(log, "ready", count=3, timeout=60)
    go.touch()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        value, counts = out.splitlines()
        assert value == str(sum(range(12)) + 700)
        reports.append(json.loads(counts))
    counts = events(log)
    assert all(counts[f"start leaf-{i}"] == 1 for i in range(12)), counts
    assert counts["start shared"] == 1 and counts["start total"] == 1, counts
    by_driver = starts_by_driver(log)
    assert all(by_driver[str(proc.pid)] >= 1 for proc in procs), by_driver  # each did some of the work
    assert sum(report["executed"] for report in reports) == 14
    for report in reports:
        assert report["by_other_drivers"] >= 1, reports  # at least `total`, or the leaves under it
        assert report["executed"] + report["by_other_drivers"] + report["cached"] + report["resumed"] == 14, reports


def killed_driver_is_taken_over_at_once(directory: Path, uri: str, monkeypatch) -> None:
    """A SIGKILLed default driver of this machine: its run shows ``running`` with a live lease,
    and the next driver takes it over at once, long before that lease expires (tests/crashes.py
    has the other holders: live, reused pid, another machine)."""
    import signal

    import cascade_core as cs

    script, log = write_workflow(directory), directory / "events.log"
    first = start_driver(script, log, uri, uri, "killed", 1, CASCADE_TEST_LEASES="0", CASCADE_TEST_SLOW="30")
    wait_for(log, "start leaf-0")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    info = run_info(uri, "killed")
    assert info["status"] == "running" and info["driver"] == holder(first.pid)
    assert stamp_seconds(info["lease_expires"]) > time.time() + 20  # the lease (30 s) is still live
    monkeypatch.setenv("CASCADE_TEST_LOG", str(log))
    monkeypatch.setenv("CASCADE_TEST_SLOW", "0.05")
    workflow = load_workflow(script)
    started = time.monotonic()
    report = cs.Engine(uri, uri).execute(workflow.graph(1), run_id="killed")
    assert time.monotonic() - started < 5  # at once: nothing of the dead driver's is waited on
    assert report.status == "succeeded" and report.value == 700
    counts = events(log)
    assert counts["start leaf-0"] == 2 and counts["end leaf-0"] == 1  # the killed attempt never ended
    assert run_info(uri, "killed")["driver"] == holder(os.getpid())


def interrupted_cli_resumes_at_once(directory: Path, state: str, cache: str, *, leases: bool) -> None:
    """Ctrl-C (SIGINT) on ``cascade run`` releases its leases: the printed resume command (with
    --leases when given) starts at once, not after lease_ttl (30 s by default)."""
    import shlex
    import signal

    (directory / "flow.py").write_text(CLI_FLOW)
    log = directory / "events.log"
    flags = ["--leases"] if leases else []
    args = ["run", "flow.py:target", "--state", state, "--cache", cache, "--workers", "2", *flags]
    first = cli(directory, *args, "--run-id", "ctrl-c", "--no-progress", LOG=str(log), SLOW="60")
    wait_for(log, "start slow-0")
    wait_for(log, "start slow-1")
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 130, err
    (line,) = [line for line in err.splitlines() if line.startswith("to resume: ")]
    words = shlex.split(line.removeprefix("to resume: "))
    assert words == ["cascade", *args, "--run-id", "ctrl-c"]
    started = time.monotonic()
    again = cli(directory, *words[1:], "--no-progress", LOG=str(log), SLOW="0.1")
    out, err = again.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert again.returncode == 0, err
    assert elapsed < 10, f"the resume took {elapsed:.1f}s: it waited on a lease of the interrupted driver"
    counts = events(log)
    assert counts["start slow-0"] == counts["start slow-1"] == 2 and counts["end slow-0"] == counts["end slow-1"] == 1
    assert counts["start total"] == 1


def exclusive_and_sharing_drivers_refuse_each_other(directory: Path, uri: str, monkeypatch) -> None:
    """Sharing drivers refuse a default one and take another sharing one; a default holder refuses
    a sharing driver; the last sharing driver out frees the run for a default one at once."""
    import pytest

    import cascade_core as cs

    script, log = write_workflow(directory), directory / "events.log"
    monkeypatch.setenv("CASCADE_TEST_LOG", str(log))
    monkeypatch.setenv("CASCADE_TEST_SLOW", "0.05")
    workflow = load_workflow(script)

    sharer = start_driver(script, log, uri, uri, "mixed", 1, CASCADE_TEST_SLOW="1")
    wait_for(log, "start leaf-0")
    with pytest.raises(cs.RunInUseError) as refused:
        cs.Engine(uri, uri).execute(workflow.graph(1), run_id="mixed")
    assert refused.value.shared and str(refused.value).startswith(
        f"run 'mixed' is shared by drivers started with leases=True (latest: {holder(sharer.pid)} (since "
    ), str(refused.value)
    joined = cs.Engine(uri, uri, leases=True).execute(workflow.graph(1), run_id="mixed")
    assert joined.value == 700 and joined.counts["by_other_drivers"] >= 2, joined.counts  # leaf-0 and shared
    out, err = sharer.communicate(timeout=60)
    assert sharer.returncode == 0, err
    started = time.monotonic()
    after = cs.Engine(uri, uri).execute(workflow.graph(1), run_id="mixed")  # the run is free again
    assert time.monotonic() - started < 2 and after.counts["resumed"] == 3
    counts = events(log)
    assert counts["start leaf-0"] == counts["start shared"] == counts["start total"] == 1, counts

    exclusive = start_driver(script, log, uri, uri, "mixed-2", 1, CASCADE_TEST_LEASES="0", CASCADE_TEST_SLOW="1")
    wait_for(log, "start leaf-0", count=2)
    with pytest.raises(cs.RunInUseError) as refused:
        cs.Engine(uri, uri, leases=True).execute(workflow.graph(1), run_id="mixed-2")
    message = str(refused.value)
    assert not refused.value.shared
    assert message.startswith(f"run 'mixed-2' is held by {holder(exclusive.pid)} (since "), message
    assert (
        "), started without leases=True, so it does not share the run: wait for it to finish, or restart every "
        "driver with leases=True (cascade run --leases) (if it died, the run is free once its lease expires, in "
    ) in message, message
    out, err = exclusive.communicate(timeout=60)
    assert exclusive.returncode == 0, err
