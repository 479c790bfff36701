"""Claims (_run/claims): a node leased by another driver is waited on and its stored result taken;
a lease given up without a result is taken over; a crashed holder's lease is freed at once; a
live holder's lease is taken when it expires (time moved, not slept); concurrent runs needing
one cache entry compute it once. Counted by executions, through the public engine."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

import cascade_core as cs
from cascade_core.backends.sqlite import SqliteStateStore
from cascade_core.testing.clock import frozen_clock


def _node_id(target) -> str:
    """The node id of a one-node graph (ids do not depend on the run id): run it once apart."""
    store = cs.MemoryStateStore()
    cs.run(target, state_backend=store, run_id="probe")
    (node_id,) = store("probe").result_ids()
    return node_id


def _one_node(name: str, value: str, counter):
    """A task of one node counting its runs under ``name``, and that node's id."""

    @cs.task(name=f"claims.{name}")
    def node():
        counter.hit(name)
        return value

    node_id = _node_id(node())
    counter.calls.clear()
    return node, node_id


class Driver(threading.Thread):
    """A driver in a thread of its own: ``cs.Engine(...).execute`` with ``leases=True``."""

    def __init__(self, target, state, run_id: str, **engine) -> None:
        super().__init__(daemon=True)
        self.engine = cs.Engine(state, leases=True, **engine)
        self.target, self.run_id = target, run_id
        self.report: cs.RunReport | None = None

    def run(self) -> None:
        self.report = self.engine.execute(self.target, run_id=self.run_id)

    def finish(self) -> cs.RunReport:
        self.join(30)
        assert not self.is_alive(), "the driver did not finish"
        assert self.report is not None
        return self.report


def _wait_for_drivers(backend, count: int, wait_until) -> None:
    """Until ``count`` drivers share the run (each holds a slot lease of its own): the later ones
    are then up, and waiting on the node the first one holds."""
    slots = [f"~driver/{n}" for n in range(64)]
    wait_until(lambda: len(backend.lease_holders(slots)) == count, 30, f"{count} drivers to share the run")


def _gone_owner() -> str:
    """An owner token naming a process of this machine that has exited."""
    code = "from cascade_core._store.process import new_owner; print(new_owner())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def test_a_node_leased_by_another_driver_is_waited_on_and_its_result_taken(any_state, counter, wait_until):
    started, release = threading.Event(), threading.Event()

    @cs.task(name="claims.work")
    def work():
        counter.hit("work")
        started.set()
        release.wait(30)
        return 42

    first = Driver(work(), any_state.uri, "shared")
    first.start()
    wait_until(started.is_set, 30, "the first driver to start the task")
    second = Driver(work(), any_state.uri, "shared")
    second.start()
    _wait_for_drivers(any_state.state("shared"), 2, wait_until)
    time.sleep(0.2)  # a window in which a second execution would show; not a wait for anything
    assert counter["work"] == 1 and second.is_alive()
    release.set()
    assert first.finish().value == 42
    report = second.finish()
    assert report.value == 42 and counter["work"] == 1
    assert report.counts["by_other_drivers"] == 1 and report.counts["executed"] == 0


def test_a_lease_given_up_without_a_result_is_taken_over_by_the_waiter(any_state, counter, wait_until):
    started, release = threading.Event(), threading.Event()

    @cs.task(name="claims.flaky")
    def flaky():
        counter.hit("flaky")
        if counter["flaky"] == 1:
            started.set()
            release.wait(30)
            raise RuntimeError("the first driver's attempt fails")
        return "second"

    first = Driver(flaky(), any_state.uri, "given-up")
    first.start()
    wait_until(started.is_set, 30, "the first driver to start the task")
    second = Driver(flaky(), any_state.uri, "given-up")
    second.start()
    _wait_for_drivers(any_state.state("given-up"), 2, wait_until)
    assert counter["flaky"] == 1
    release.set()
    assert first.finish().status == "failed"
    report = second.finish()
    assert report.value == "second" and counter["flaky"] == 2 and report.counts["executed"] == 1


def test_a_crashed_holders_node_lease_is_freed_at_once(any_state, counter, caplog):
    orphan, node_id = _one_node("orphan", "done", counter)
    backend = any_state.state("orphaned")
    assert backend.acquire_leases([node_id], _gone_owner(), 600.0) == {node_id}
    caplog.set_level(logging.WARNING, logger="cascade")
    started = time.monotonic()
    assert cs.run(orphan(), state_backend=any_state.uri, run_id="orphaned", leases=True) == "done"
    assert time.monotonic() - started < 10  # not the lease's 600 s
    assert counter["orphan"] == 1
    assert any("freed 1 node lease(s) of driver pid" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_live_holders_node_lease_is_taken_once_it_expires(kind, tmp_path, counter, wait_until):
    expiring, node_id = _one_node("expiring", "mine", counter)
    store = cs.MemoryStateStore() if kind == "memory" else SqliteStateStore(tmp_path / "state.db")
    with frozen_clock() as clock:
        # A holder that cannot be told dead (not a token of this machine): only expiry frees it.
        assert store("expiry").acquire_leases([node_id], "another-machine:1:2:3:4:5", 60.0) == {node_id}
        driver = Driver(expiring(), store, "expiry", lease_ttl=600.0)
        driver.start()
        time.sleep(0.3)  # the driver polls the held lease meanwhile; not a wait for anything
        assert counter["expiring"] == 0 and driver.is_alive()
        clock.advance(60.0)  # without the clock hook the lease would hold past finish()'s 30 s
        report = driver.finish()
    assert report.value == "mine" and counter["expiring"] == 1


@pytest.mark.parametrize(("cache_lock", "expected"), [(True, 1), (False, 2)])
def test_concurrent_runs_share_one_computation_unless_opted_out(counter, cache_lock, expected):
    @cs.task(cache=True, cache_lock=cache_lock, name=f"dogpile_{cache_lock}")
    def slow():
        counter.hit("slow")
        time.sleep(0.3)
        return 7

    cache = cs.MemoryCacheBackend()
    start = threading.Barrier(2)
    values: list[int] = []

    def driver() -> None:
        start.wait()
        values.append(cs.run(slow(), cache_backend=cache))

    threads = [threading.Thread(target=driver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert values == [7, 7]
    assert counter["slow"] == expected
