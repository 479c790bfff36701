"""Task records name the driver that ran them, so a picture of a shared run tells apart the
tasks this driver ran from those another driver ran."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter

FLOW = """
import time
import cascade_core as cs

@cs.task
def slow(i):
    time.sleep(0.4)
    return i

@cs.task
def total(xs):
    return sum(xs)

def pipeline():
    return total([slow(i) for i in range(6)])
"""


def cascade(cwd, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "cascade_core", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_shared_run_shows_which_tasks_another_driver_ran(tmp_path):
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    store = ["--state", "sqlite:///runs.db", "--cache", "sqlite:///runs.db"]
    run = ["run", "flow.py:pipeline", *store, "--run-id", "shared", "--leases", "--workers", "1", "--no-progress"]
    drivers = [cascade(tmp_path, *run) for _ in range(2)]
    for driver in drivers:
        _, err = driver.communicate(timeout=60)
        assert driver.returncode == 0, err
    shown = cascade(
        tmp_path, "graph", "flow.py:pipeline", "--run-id", "shared", "--state", "sqlite:///runs.db", "-f", "json"
    )
    out, err = shown.communicate(timeout=60)
    assert shown.returncode == 0, err
    statuses = Counter(node["status"] for node in json.loads(out)["nodes"] if node["label"] == "slow")
    # Both drivers ran some of the six; the run info names the latest driver, the others are "other_driver".
    assert statuses["other_driver"] >= 1 and statuses["executed"] >= 1, statuses
    assert statuses["other_driver"] + statuses["executed"] == 6, statuses
