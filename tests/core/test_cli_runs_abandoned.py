"""Runs whose driver died, shown as ``abandoned`` by ``cascade runs list|show``: once the run lease
expired, and at once when the driver was a process of this machine; on sqlite and Redis."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cascade_test_cli import ok, write_flow

from cascade_core import BackendURI
from cascade_core._plugins.registry import registry


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    return write_flow(tmp_path)


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
    """``cli_run(*args)`` returns a CompletedProcess."""
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


def test_a_running_run_whose_lease_expired_is_shown_abandoned(tmp_path, any_shared_state):
    now = datetime.now(timezone.utc)
    write_runs(any_shared_state.uri, now)
    check_abandoned(lambda *args: ok(tmp_path, *args), any_shared_state.uri, now)


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


def test_a_sigkilled_driver_shows_abandoned_at_once(tmp_path, any_shared_state):
    sigkill_a_driver(tmp_path, any_shared_state.uri)
    check_killed_driver(lambda *args: ok(tmp_path, *args), any_shared_state.uri)
