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


def graph(width):
    return total([leaf(i) for i in range(width)], shared(7))


if __name__ == "__main__":
    state, cache, run_id, width = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ttl = float(os.environ.get("CASCADE_TEST_LEASE_TTL", "30"))
    engine = cs.Engine(state, cache, leases=True, lease_ttl=ttl, max_workers=4)
    print(engine.run(graph(width), run_id=run_id), flush=True)
"""


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


def events(log: Path) -> Counter[str]:
    """How many times each event ("start leaf-0", "end shared", ...) happened, across processes."""
    if not log.exists():
        return Counter()
    return Counter(line.rsplit(" ", 1)[0] for line in log.read_text().splitlines() if line)


def wait_for(log: Path, event: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while events(log)[event] == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{event!r} never happened; log: {log.read_text() if log.exists() else ''}")
        time.sleep(0.02)
