"""Several driver processes on one real redis-server: each task runs once, a killed driver's
leases expire and another driver takes over, concurrent runs compute a shared cache entry once."""

from __future__ import annotations

import signal

import pytest

pytestmark = pytest.mark.redis


def test_drivers_of_one_run_id_run_each_task_once(tmp_path, drivers, redis_uri, redis_server):
    script, log = drivers.write_workflow(tmp_path), tmp_path / "events.log"
    procs = [drivers.start_driver(script, log, redis_uri, redis_uri, "together", 6) for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == str(sum(range(6)) + 700)
    counts = drivers.events(log)
    assert all(counts[f"start leaf-{i}"] == 1 for i in range(6)), counts
    assert counts["start shared"] == 1 and counts["start total"] == 1, counts
    with redis_server.client() as client:
        assert client.keys("cascade:lease:*") == [] and client.keys("cascade:lock:*") == []  # all released


def test_a_killed_driver_loses_its_leases_by_expiry_and_another_takes_over(tmp_path, drivers, redis_uri):
    script, log = drivers.write_workflow(tmp_path), tmp_path / "events.log"
    first = drivers.start_driver(
        script, log, redis_uri, redis_uri, "takeover", 1, CASCADE_TEST_SLOW="3", CASCADE_TEST_LEASE_TTL="1"
    )
    drivers.wait_for(log, "start leaf-0")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    second = drivers.start_driver(
        script, log, redis_uri, redis_uri, "takeover", 1, CASCADE_TEST_SLOW="0.1", CASCADE_TEST_LEASE_TTL="1"
    )
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert out.strip() == "700"
    counts = drivers.events(log)
    assert counts["start leaf-0"] == 2 and counts["end leaf-0"] == 1, counts


def test_concurrent_runs_compute_a_shared_cache_entry_once(tmp_path, drivers, redis_uri):
    script, log = drivers.write_workflow(tmp_path), tmp_path / "events.log"
    procs = [drivers.start_driver(script, log, redis_uri, redis_uri, f"run-{n}", 1) for n in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "700"
    counts = drivers.events(log)
    assert counts["start shared"] == 1 and counts["start leaf-0"] == 3, counts
