"""The run lease: one driver per run id unless the drivers share it (leases=True), sharing drivers
split the work, a dead driver's run is taken over once its lease expires, and a driver that
exits (Ctrl-C) releases everything at once. The driver scenarios (tests/drivers.py) run in
separate processes on sqlite and on a real redis-server (any_shared_state)."""

from __future__ import annotations

import math
import os
import re
import time

import pytest

import cascade_core as cs
from cascade_core import cli
from cascade_core._store.leases import RunLease, new_owner
from cascade_core.backends.memory import MemoryStateBackend
from cascade_core.testing.clock import frozen_clock


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path / 'shared.db'}"


def test_a_second_driver_of_a_live_run_is_refused_naming_the_holder(tmp_path, any_shared_state, drivers, monkeypatch):
    drivers.second_driver_is_refused(tmp_path, any_shared_state.uri, monkeypatch)


def test_a_second_cli_driver_is_refused_with_one_line(tmp_path, any_shared_state, drivers):
    drivers.second_cli_driver_is_refused(tmp_path, any_shared_state.uri)


@pytest.mark.slow
def test_sharing_drivers_split_the_work_and_count_what_others_did(tmp_path, any_shared_state, drivers):
    drivers.sharing_drivers_split_the_work(tmp_path, any_shared_state.uri)
    assert any_shared_state.leases_left(run_lease=False) == []  # every node lease and cache lock released


def test_a_killed_driver_of_this_machine_is_taken_over_at_once(tmp_path, any_shared_state, drivers, monkeypatch):
    drivers.killed_driver_is_taken_over_at_once(tmp_path, any_shared_state.uri, monkeypatch)


@pytest.mark.slow
def test_exclusive_and_sharing_drivers_refuse_each_other(tmp_path, any_shared_state, drivers, monkeypatch):
    drivers.exclusive_and_sharing_drivers_refuse_each_other(tmp_path, any_shared_state.uri, monkeypatch)


@pytest.mark.parametrize("leases", [False, True], ids=["default", "leases"])
def test_ctrl_c_then_the_printed_resume_command_starts_at_once(tmp_path, any_shared_state, drivers, leases):
    uri = any_shared_state.uri
    drivers.interrupted_cli_resumes_at_once(tmp_path, uri, uri, leases=leases)
    assert any_shared_state.leases_left() == []


def test_a_driver_that_stops_on_an_exception_releases_the_run_at_once(uri, counter):
    @cs.task
    def interrupted():
        counter.hit("interrupted")
        raise KeyboardInterrupt

    @cs.task
    def fine():
        counter.hit("fine")
        return 1

    engine = cs.Engine(uri, uri, lease_ttl=30)
    with pytest.raises(KeyboardInterrupt):
        engine.run(interrupted(), run_id="stopped")
    assert engine.run(fine(), run_id="stopped") == 1  # not refused: nothing waits for the 30 s lease
    assert counter["interrupted"] == counter["fine"] == 1


def test_a_cancelled_arun_releases_the_run_within_a_moment(uri, counter):
    import asyncio

    @cs.task
    def slow(i):
        counter.hit("slow")
        time.sleep(0.5)
        return i

    async def cancel_then_rerun():
        engine = cs.Engine(uri, uri, lease_ttl=30, max_workers=4)
        run = asyncio.ensure_future(engine.arun([slow(1), slow(2)], run_id="cancelled"))
        while counter["slow"] < 2:
            await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        cancelled = time.monotonic()
        while True:  # the run notices the cancellation at its next step (at most 0.1 s)
            try:
                return await engine.arun([slow(1), slow(2)], run_id="cancelled"), time.monotonic() - cancelled
            except cs.RunInUseError:
                assert time.monotonic() - cancelled < 2
                await asyncio.sleep(0.02)

    value, waited = asyncio.run(cancel_then_rerun())
    assert value == [1, 2] and waited < 2


# -- the lock itself, on the memory backend ---------------------------------------------------------


def _lease(backend, shared, ttl=30.0):
    return RunLease(backend, new_owner(), ttl, shared)


def test_the_run_lease_is_a_reader_writer_lock():
    backend = MemoryStateBackend("rw")
    exclusive = _lease(backend, False)
    assert exclusive.acquire() is None
    assert _lease(backend, False).acquire() == "exclusive"
    assert _lease(backend, True).acquire() == "exclusive"
    exclusive.close()
    first, second = _lease(backend, True), _lease(backend, True)
    assert first.acquire() is None and second.acquire() is None  # sharing drivers never refuse each other
    assert _lease(backend, False).acquire() == "shared"
    first.close()
    assert _lease(backend, False).acquire() == "shared"  # one sharing driver is still there
    second.close()  # the last one out frees the run
    again = _lease(backend, False)
    assert again.acquire() is None
    again.close()


def test_a_dead_holder_loses_the_run_when_its_lease_expires():
    backend = MemoryStateBackend("dead")
    with frozen_clock() as clock:
        dead = _lease(backend, True, ttl=30)
        assert dead.acquire() is None
        dead.keeper.close(keep=["~run"])  # it stops renewing without releasing: as if killed
        dead.slot.close(keep=dead.slot.held)
        clock.advance(29.9)
        assert _lease(backend, False).acquire() == "shared"
        clock.advance(0.1)
        taker = _lease(backend, False)
        assert taker.acquire() is None
        taker.close()


def test_the_heartbeat_renews_the_run_lease_and_says_until_when(wait_until):
    backend = MemoryStateBackend("beat")
    renewed: list[float] = []
    with frozen_clock() as clock:
        lease = RunLease(backend, new_owner(), 30, False, renewed.append)
        assert lease.acquire() is None
        for renewal in (1, 2):  # one every ttl / 3 = 10 s
            clock.advance(10)
            wait_until(lambda: len(renewed) >= renewal, 10, f"renewal {renewal}")  # noqa: B023
            assert renewed[-1] == clock.wall() + 30
        clock.advance(15)  # 35 s after it was claimed: past its first expiry, kept by the renewals
        assert _lease(backend, False).acquire() == "exclusive"
        lease.close()


def test_a_run_records_its_driver_and_lease_in_the_run_info(uri, drivers):
    @cs.task
    def one():
        return 1

    started = time.time()
    assert cs.Engine(uri, uri, lease_ttl=5).run(one(), run_id="info") == 1
    info = drivers.run_info(uri, "info")
    assert info["driver"] == drivers.holder(os.getpid())
    assert started - 0.01 <= drivers.stamp_seconds(info["driver_started"]) <= time.time()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", info["lease_expires"])
    assert 4 < drivers.stamp_seconds(info["lease_expires"]) - drivers.stamp_seconds(info["driver_started"]) < 6
    assert info["count_by_other_drivers"] == "0" and info["status"] == "succeeded"


# -- refusals at the start of a run ------------------------------------------------------------------


class _NoLeases:
    """A state backend without the Leases capability."""

    def __init__(self, run_id):
        self.run_id = run_id
        self._inner = MemoryStateBackend(run_id)

    def __getattr__(self, name):
        if name in ("acquire_leases", "renew_leases", "release_leases"):
            raise AttributeError(name)
        return getattr(self._inner, name)


class _NoLeasesPlugin:
    @cs.hookimpl
    def cascade_state_backend(self, uri):
        return _NoLeases


def test_leases_on_a_backend_without_the_capability_fail_at_the_start(counter):
    @cs.task
    def one():
        counter.hit("one")
        return 1

    cs.register_backend("nolease", _NoLeasesPlugin())
    with pytest.raises(cs.BackendError) as refused:
        cs.run(one(), state_backend="nolease://admin:s3cret@host/x", leases=True)
    assert str(refused.value) == (
        "leases=True needs a state backend with the Leases capability (acquire_leases, renew_leases, "
        "release_leases), which nolease://admin:***@host/x lacks: use one that has it (sqlite, redis) "
        "or drop leases=True"
    )
    assert counter.total == 0
    assert cs.run(one(), state_backend="nolease://admin:s3cret@host/x") == 1  # no run lease: the engine cannot know


def test_the_cli_refuses_leases_on_a_backend_without_the_capability(tmp_path, capsys, monkeypatch):
    (tmp_path / "flow.py").write_text("import cascade_core as cs\n@cs.task\ndef one():\n    return 1\ntarget = one()\n")
    monkeypatch.chdir(tmp_path)
    cs.register_backend("nolease", _NoLeasesPlugin())
    code = cli.main(
        [
            "run",
            "flow.py:target",
            "--state",
            "nolease://admin:s3cret@host/x",
            "--cache",
            "memory://",
            "--leases",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1  # the store lacks a capability: a BackendError (docs/cli.md's exit codes)
    assert err.splitlines() == [
        "error: leases=True needs a state backend with the Leases capability (acquire_leases, renew_leases, "
        "release_leases), which nolease://admin:***@host/x lacks: use one that has it (sqlite, redis) "
        "or drop leases=True"
    ]


@pytest.mark.parametrize("ttl", [math.nan, math.inf, -math.inf, True, "30", None, 0.1, 86401, 1e300])
def test_lease_ttl_must_be_a_finite_number_in_range(ttl):
    with pytest.raises(cs.DefinitionError) as refused:
        cs.Engine(lease_ttl=ttl)
    assert str(refused.value) == f"lease_ttl must be a number of seconds from 0.5 to 86400, got {ttl!r}"


def test_a_nan_lease_ttl_is_refused_before_a_cached_task_runs(counter):
    @cs.task(cache=True)
    def cached():
        counter.hit("cached")
        return 1

    with pytest.raises(cs.DefinitionError, match="^lease_ttl must be a number of seconds from 0.5 to 86400, got nan$"):
        cs.run(cached(), lease_ttl=math.nan)
    with pytest.raises(cs.DefinitionError, match="^leases must be True or False, got 'no'$"):
        cs.run(cached(), leases="no")
    assert counter.total == 0
