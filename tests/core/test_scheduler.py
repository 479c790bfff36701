"""The scheduler (_run/scheduler): dependency order, retries and their delays, failures skipping
their downstream, max_workers; counted by what the tasks did, through the public engine."""

from __future__ import annotations

import threading
import time

import pytest

import cascade_core as cs


def test_downstream_of_a_failure_does_not_run_but_independent_branches_finish(counter):
    @cs.task
    def ok(x):
        counter.hit(f"ok{x}")
        return x

    @cs.task
    def fail(x):
        raise RuntimeError("nope")

    @cs.task
    def after_failure(x):
        counter.hit("after")
        return x

    @cs.task
    def join(*xs):
        counter.hit("join")
        return xs

    store = cs.MemoryStateStore()
    engine = cs.Engine(store)
    report = engine.execute(join(after_failure(fail(ok(1))), ok(2)), run_id="mixed")
    assert report.status == "failed"
    assert counter["after"] == 0 and counter["join"] == 0
    assert counter["ok1"] == 1 and counter["ok2"] == 1
    assert report.counts["failed"] == 1 and report.counts["skipped"] == 2
    state = store("mixed")
    assert len(state.result_ids()) == 2  # the two successes are stored
    reasons = set(state.get_skip_reasons().values())
    assert reasons == {f"upstream failed: {fail.name}"}
    assert state.get_run_info()["status"] == "failed"


def test_retries_with_delay_and_backoff(counter):
    attempts: list[float] = []

    @cs.task(retries=2, retry_delay=0.05, retry_backoff=2)
    def eventually():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    assert cs.run(eventually()) == "ok"
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.045
    assert attempts[2] - attempts[1] >= 0.095  # backoff doubled the delay

    @cs.task(retries=1)
    def always():
        counter.hit("always")
        raise KeyError("x")

    with pytest.raises(cs.TaskFailed):
        cs.run(always())
    assert counter["always"] == 2


def test_independent_tasks_run_concurrently_bounded_by_max_workers():
    active = 0
    peak = 0
    lock = threading.Lock()

    @cs.task
    def slow(i):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return i

    @cs.task
    def gather(*xs):
        return sum(xs)

    assert cs.run(gather(*[slow(i) for i in range(12)]), max_workers=4) == sum(range(12))
    assert peak == 4
    peak = 0
    cs.run(gather(*[slow(i) for i in range(6)]), max_workers=1)
    assert peak == 1


class Timeline:
    """When each call started and ended, in one list: what the order checks read."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def note(self, what: str, label: str) -> None:
        with self.lock:
            self.events.append((what, label))

    def at(self, what: str, label: str) -> int:
        return self.events.index((what, label))


@pytest.mark.parametrize("executor", ["threads://?max_workers=4", "inline://"])
def test_every_task_starts_after_all_its_upstreams_ended(executor):
    timeline = Timeline()

    @cs.task(name="sched.step")
    def step(label, *upstream):
        timeline.note("start", label)
        time.sleep(0.002)  # long enough for a wrong order to show on a thread pool
        timeline.note("end", label)
        return label

    # A diamond over a fan-out: a -> b1..b4 -> c1 (b1, b2), c2 (b3, b4) -> d.
    a = step("a")
    bs = [step(f"b{i}", a) for i in range(1, 5)]
    c1, c2 = step("c1", bs[0], bs[1]), step("c2", bs[2], bs[3])
    assert cs.run(step("d", c1, c2), executor=executor) == "d"
    edges = [("a", b) for b in ("b1", "b2", "b3", "b4")]
    edges += [("b1", "c1"), ("b2", "c1"), ("b3", "c2"), ("b4", "c2"), ("c1", "d"), ("c2", "d")]
    for upstream, downstream in edges:
        assert timeline.at("end", upstream) < timeline.at("start", downstream), (upstream, downstream)
    assert len(timeline.events) == 2 * 8  # each call ran once


def test_a_retry_waiting_for_its_delay_holds_no_worker():
    attempts: list[float] = []
    others: list[float] = []

    @cs.task(name="sched.flaky", retries=1, retry_delay=0.3)
    def flaky():
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise ConnectionError("once")
        return "ok"

    @cs.task(name="sched.other")
    def other(i):
        others.append(time.monotonic())
        return i

    @cs.task(name="sched.both")
    def both(first, *rest):
        return first, len(rest)

    assert cs.run(both(flaky(), *[other(i) for i in range(3)]), max_workers=1) == ("ok", 3)
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.29
    # With its one worker free during the delay, the other calls ran before the retry did.
    assert len(others) == 3 and max(others) < attempts[1]


def test_retries_used_up_fail_the_run_once_and_count_each_attempt(counter):
    @cs.task(name="sched.never", retries=2, retry_delay=0.01)
    def never():
        counter.hit("never")
        raise KeyError("always")

    @cs.task(name="sched.after")
    def after(value):
        counter.hit("after")
        return value

    report = cs.Engine().execute(after(never()), run_id="used-up")
    assert report.status == "failed" and isinstance(report.error, cs.TaskFailed)
    assert counter["never"] == 3 and counter["after"] == 0
    assert report.counts["failed"] == 1 and report.counts["skipped"] == 1 and report.counts["executed"] == 0
    assert report.failed_task is not None and report.failed_task.endswith("sched.never")


def test_a_failure_skips_every_node_below_it_and_only_those(counter):
    @cs.task(name="sched.leaf")
    def leaf(x):
        counter.hit(f"leaf{x}")
        if x == 0:
            raise ValueError("zero")
        return x

    @cs.task(name="sched.add")
    def add(*xs):
        counter.hit("add")
        return sum(xs)

    store = cs.MemoryStateStore()
    bad, good = leaf(0), leaf(1)
    below = add(add(bad, good), add(good))  # the outer add and the first inner one are below the failure
    report = cs.Engine(store).execute(add(below, add(good)), run_id="skips")
    assert report.status == "failed"
    assert (counter["leaf0"], counter["leaf1"]) == (1, 1)
    assert counter["add"] == 2  # add(good) twice: independent of the failure
    assert report.counts["skipped"] == 3 and report.counts["failed"] == 1
    assert set(store("skips").get_skip_reasons().values()) == {"upstream failed: sched.leaf"}
