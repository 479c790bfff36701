"""After a crash on this machine the next driver resumes at once (docs/backends.md, "After a
crash"): on sqlite and a real redis-server, alone and sharing the run, and on Dask; the
scenarios are in tests/crashes.py, shared with the Redis Cluster tests. A driver killed before
its target reruns only the target once its run lease expires."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest


@pytest.mark.parametrize("flags", [(), ("--leases",)], ids=["default", "sharing"])
def test_a_sigkilled_driver_is_taken_over_at_once_and_its_leases_freed(tmp_path, crashes, any_shared_state, flags):
    crashes.sigkilled_driver_resumes_at_once(tmp_path, any_shared_state.uri, *flags)
    assert any_shared_state.leases_left() == []  # the dead driver's leases went with the resume


@pytest.mark.slow
def test_a_sigkilled_driver_on_dask_is_taken_over_at_once(tmp_path, crashes):
    executor = "dask+local://?n_workers=1&threads_per_worker=2&processes=false"
    crashes.sigkilled_driver_resumes_at_once(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", "--executor", executor)


def test_gone_live_reused_and_foreign_holders_are_told_apart(crashes, caplog, any_state):
    crashes.holders_are_told_apart(any_state.uri, caplog)


KILLED_BEFORE_TARGET = """
    import os, signal, sys
    from pathlib import Path

    import cascade_core as cs

    uri, log = sys.argv[1], Path(sys.argv[2])
    flag = log.with_suffix(".killed")

    def record(name):
        with log.open("a") as file:
            file.write(name + "\\n")

    @cs.task
    def square(i):
        record(f"square-{i}")
        return i * i

    @cs.task
    def finish(*values):
        record("finish")
        if not flag.exists():
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return sum(values)

    # A short lease_ttl: the run lease of a killed driver holds the run that long (a rerun meanwhile is refused).
    value = cs.run(
        finish(*[square(i) for i in range(6)]), state_backend=uri, cache_backend=uri, run_id="driver", lease_ttl=1
    )
    print(value)
"""


def test_a_driver_killed_before_its_target_reruns_only_the_target(tmp_path: Path, any_shared_state, wait_until) -> None:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(KILLED_BEFORE_TARGET))
    log = tmp_path / "executions.log"
    uri = any_shared_state.uri
    command = [sys.executable, str(script), uri, str(log)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == -9, first.stderr
    wait_until(lambda: any_shared_state.run_lease_free("driver"), 10, "the killed driver's run lease to expire")
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "55"
    assert Counter(log.read_text().split()) == Counter({**{f"square-{i}": 1 for i in range(6)}, "finish": 2})
