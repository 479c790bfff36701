"""Several driver processes on one store (a sqlite file, a real redis-server): each task runs once,
a dead driver is taken over, a waiting driver picks up a stored result, and concurrent runs
needing one cache entry compute it once."""

from __future__ import annotations

import signal


def _finish(procs, expected: str) -> None:
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == expected


def test_drivers_of_one_run_id_run_each_task_once(tmp_path, drivers, any_shared_state):
    uri, script, log = any_shared_state.uri, drivers.write_workflow(tmp_path), tmp_path / "events.log"
    _finish([drivers.start_driver(script, log, uri, uri, "together", 6) for _ in range(3)], str(sum(range(6)) + 700))
    counts = drivers.events(log)
    assert all(counts[f"start leaf-{i}"] == 1 for i in range(6)), counts
    assert counts["start shared"] == 1 and counts["start total"] == 1, counts
    assert any_shared_state.leases_left(run_lease=False) == []  # every node lease and cache lock released


def test_drivers_sharing_a_run_split_a_map_known_at_run_time(tmp_path, drivers, any_shared_state):
    uri, script, log = any_shared_state.uri, drivers.write_workflow(tmp_path), tmp_path / "events.log"
    started = [
        drivers.start_driver(script, log, uri, uri, "mapped", 12, CASCADE_TEST_MAP="1", CASCADE_TEST_WORKERS="2")
        for _ in range(3)
    ]
    _finish(started, str(sum(range(12)) + 700))
    counts = drivers.events(log)
    assert all(counts[f"start leaf-{i}"] == 1 for i in range(12)), counts  # each mapped call once
    assert counts["start total"] == 1, counts
    leaves_by_driver = drivers.Counter(
        line.rsplit(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith("start leaf-")
    )
    assert len(leaves_by_driver) >= 2, leaves_by_driver  # split between the drivers
    assert any_shared_state.leases_left(run_lease=False) == []


def test_a_killed_driver_loses_its_leases_by_expiry_and_another_takes_over(tmp_path, drivers, any_shared_state):
    uri, script, log = any_shared_state.uri, drivers.write_workflow(tmp_path), tmp_path / "events.log"
    first = drivers.start_driver(
        script, log, uri, uri, "takeover", 1, CASCADE_TEST_SLOW="3", CASCADE_TEST_LEASE_TTL="1"
    )
    drivers.wait_for(log, "start leaf-0")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    second = drivers.start_driver(
        script, log, uri, uri, "takeover", 1, CASCADE_TEST_SLOW="0.1", CASCADE_TEST_LEASE_TTL="1"
    )
    _finish([second], "700")
    counts = drivers.events(log)
    assert counts["start leaf-0"] == 2 and counts["end leaf-0"] == 1, counts  # the killed attempt never ended
    assert counts["end shared"] == 1


def test_a_driver_that_waits_picks_up_the_stored_result(tmp_path, drivers, any_shared_state):
    uri, script, log = any_shared_state.uri, drivers.write_workflow(tmp_path), tmp_path / "events.log"
    first = drivers.start_driver(script, log, uri, uri, "pickup", 2, CASCADE_TEST_SLOW="1")
    drivers.wait_for(log, "start leaf-1")
    second = drivers.start_driver(script, log, uri, uri, "pickup", 2, CASCADE_TEST_SLOW="1")
    _finish([first, second], "701")
    counts = drivers.events(log)
    assert counts["start leaf-0"] == counts["start leaf-1"] == counts["start shared"] == 1, counts


def test_concurrent_runs_compute_a_shared_cache_entry_once(tmp_path, drivers, any_shared_state):
    uri, script, log = any_shared_state.uri, drivers.write_workflow(tmp_path), tmp_path / "events.log"
    _finish([drivers.start_driver(script, log, uri, uri, f"run-{n}", 1) for n in range(3)], "700")
    counts = drivers.events(log)
    assert counts["start shared"] == 1, counts  # different run ids: only the cache lock serialises them
    assert counts["start leaf-0"] == 3
