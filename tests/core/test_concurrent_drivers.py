"""Several driver processes on one sqlite file: each task runs once, a dead driver is taken over,
and concurrent runs needing one cache entry compute it once."""

from __future__ import annotations

import os
import signal

import pytest


@pytest.fixture
def setup(tmp_path, drivers):
    script = drivers.write_workflow(tmp_path)
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    return script, tmp_path / "events.log", uri


def test_drivers_of_one_run_id_run_each_task_once(setup, drivers):
    script, log, uri = setup
    procs = [drivers.start_driver(script, log, uri, uri, "together", 6) for _ in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert out.strip() == str(sum(range(6)) + 700)
    counts = drivers.events(log)
    assert all(counts[f"start leaf-{i}"] == 1 for i in range(6)), counts
    assert counts["start shared"] == 1 and counts["start total"] == 1, counts


def test_a_killed_driver_loses_its_leases_by_expiry_and_another_takes_over(setup, drivers):
    script, log, uri = setup
    env = {"CASCADE_TEST_SLOW": "3", "CASCADE_TEST_LEASE_TTL": "1"}
    first = drivers.start_driver(script, log, uri, uri, "takeover", 1, **env)
    drivers.wait_for(log, "start leaf-0")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    second = drivers.start_driver(
        script, log, uri, uri, "takeover", 1, CASCADE_TEST_SLOW="0.1", CASCADE_TEST_LEASE_TTL="1"
    )
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert out.strip() == "700"
    counts = drivers.events(log)
    assert counts["start leaf-0"] == 2 and counts["end leaf-0"] == 1  # the killed attempt never ended
    assert counts["end shared"] == 1


def test_a_driver_that_waits_picks_up_the_stored_result(setup, drivers):
    script, log, uri = setup
    first = drivers.start_driver(script, log, uri, uri, "pickup", 2, CASCADE_TEST_SLOW="1")
    drivers.wait_for(log, "start leaf-1")
    second = drivers.start_driver(script, log, uri, uri, "pickup", 2, CASCADE_TEST_SLOW="1")
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "701"
    counts = drivers.events(log)
    assert counts["start leaf-0"] == counts["start leaf-1"] == counts["start shared"] == 1, counts


def test_concurrent_runs_compute_a_shared_cache_entry_once(setup, drivers):
    script, log, uri = setup
    procs = [drivers.start_driver(script, log, uri, uri, f"run-{n}", 1) for n in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "700"
    counts = drivers.events(log)
    assert counts["start shared"] == 1, counts  # different run ids: only the cache lock serialises them
    assert counts["start leaf-0"] == 3
    assert os.path.getsize(log) > 0
