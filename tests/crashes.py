"""Drivers that crash, and the driver that comes next: scenarios shared by the sqlite, Redis,
Redis Cluster and Dask tests (tests/core/test_crash_resume.py and its Redis twins).

A driver of this machine whose process is gone is taken over at once (docs/backends.md, "After
a crash"); a holder on another machine keeps its run until its lease expires.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

CHAIN = """
import os, time
import cascade_core as cs


def note(event):
    with open(os.environ["LOG"], "a") as log:
        log.write(f"{event} {os.getpid()}\\n")


@cs.task
def step(i, x):
    note(f"start step-{i}")
    if i == int(os.environ.get("HANG_AT", "0")):
        time.sleep(120)
    note(f"end step-{i}")
    return x + i


def chain():
    x = 0
    for i in range(1, 7):
        x = step(i, x)
    return x


target = chain()
"""


def events(log: Path) -> Counter[str]:
    """How many times each event ("start step-1", ...) happened, across processes."""
    text = log.read_text() if log.exists() else ""
    return Counter(line.rsplit(" ", 1)[0] for line in text.splitlines() if line)


def wait_for(log: Path, event: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not events(log)[event]:
        assert time.monotonic() < deadline, f"{event!r} never happened; log: {events(log)}"
        time.sleep(0.02)


def cascade(directory: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """``cascade ARGS`` in ``directory``, started, not awaited."""
    from cascade_test_cli import start

    return start(directory, *args, **env)


def sigkilled_driver_resumes_at_once(directory: Path, state: str, *flags: str) -> None:
    """A six-task chain whose driver is SIGKILLed in its fourth task: the next driver, started at
    once, says the last one is gone, resumes, and runs only the fourth to sixth tasks (the run
    lease and, with --leases, the node leases live 30 s: nothing waits for them)."""
    (directory / "flow.py").write_text(CHAIN)
    log = directory / "events.log"
    args = ["run", "flow.py:target", "--state", state, "--run-id", "rr1", "--no-progress", *flags]
    first = cascade(directory, *args, LOG=str(log), HANG_AT="4")
    try:
        wait_for(log, "start step-4")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    started = time.monotonic()
    again = cascade(directory, *args, LOG=str(log))
    out, err = again.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert again.returncode == 0, err
    assert f"run rr1: its last driver (pid {first.pid}) is gone; resuming" in err, err
    assert "Traceback" not in err, err
    assert elapsed < 15, f"the resume took {elapsed:.1f}s: it waited on the dead driver's lease"
    counts = events(log)
    assert [counts[f"start step-{i}"] for i in range(1, 7)] == [1, 1, 1, 2, 1, 1], counts
    assert counts["end step-4"] == 1, counts


OWNER = "from cascade_core._store.process import new_owner; print(new_owner())"


def dead_owner() -> tuple[str, int]:
    """The owner token of a driver process of this machine that has exited, and its pid."""
    done = subprocess.run([sys.executable, "-c", OWNER], capture_output=True, text=True, check=True)
    token = done.stdout.strip()
    return token, int(token.split(":")[1])


def lease_run(uri: str, run_id: str, owner: str, ttl: float, driver: str) -> None:
    """Leave ``run_id`` as a driver holding it with ``owner`` would: the run lease, and run info naming it."""
    from cascade_core._plugins.resolve import resolve_state
    from cascade_core._store.leases import RUN_LEASE

    spec = resolve_state(uri)
    backend = spec.open(run_id)
    try:
        assert backend.acquire_leases([RUN_LEASE], owner, ttl) == {RUN_LEASE}
        info = {"status": "running", "driver": driver, "driver_token": owner}
        backend.set_run_info({**info, "lease_expires": _stamp(time.time() + ttl)})
    finally:
        backend.close()
        spec.close()


def _stamp(seconds: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def token_naming(pid: int, start: int, machine: str | None = None) -> str:
    from cascade_core._store.process import machine_id

    return f"host-x:{pid}:{start}:{machine or machine_id()}:0123456789ab:0"


def holders_are_told_apart(uri: str, caplog) -> None:
    """A gone holder is taken over at once; a live one (its own pid and start time) is refused; a pid
    that now belongs to a process started later is not taken for the holder; a holder of another
    machine is refused with the seconds its lease has left."""
    import logging

    import pytest

    import cascade_core as cs
    from cascade_core._store.process import start_ticks

    @cs.task
    def one() -> int:
        return 1

    caplog.set_level(logging.WARNING, logger="cascade")
    token, pid = dead_owner()
    lease_run(uri, "gone", token, 60, f"host x pid {pid}")
    assert cs.run(one(), state_backend=uri, run_id="gone") == 1
    assert f"run gone: its last driver (pid {pid}) is gone; resuming" in caplog.text

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = start_ticks(sleeper.pid)
        assert start and start > 0
        lease_run(uri, "alive", token_naming(sleeper.pid, start), 60, f"host x pid {sleeper.pid}")
        with pytest.raises(cs.RunInUseError, match=r"in (59|60) s, at "):
            cs.run(one(), state_backend=uri, run_id="alive")
        # The same pid, recorded with an earlier start: the holder died and its pid was reused.
        lease_run(uri, "reused", token_naming(sleeper.pid, start - 1), 60, f"host x pid {sleeper.pid}")
        assert cs.run(one(), state_backend=uri, run_id="reused") == 1
    finally:
        sleeper.kill()
        sleeper.wait()
    # Another machine's holder: even a pid that is gone here proves nothing there.
    lease_run(uri, "elsewhere", token_naming(pid, 5, machine="deadbeef"), 1.0, f"host other pid {pid}")
    with pytest.raises(
        cs.RunInUseError, match=r"is already being run by host other pid \d+: .* lease expires, in [01] s"
    ):
        cs.run(one(), state_backend=uri, run_id="elsewhere")
    deadline = time.monotonic() + 10
    while True:
        try:
            assert cs.run(one(), state_backend=uri, run_id="elsewhere") == 1
            break
        except cs.RunInUseError:
            assert time.monotonic() < deadline, "the lease of another machine's driver never expired"
            time.sleep(0.1)
