"""Named limits and resources in runs (memory:// and sqlite://): measured by the tasks themselves."""

from __future__ import annotations

import threading
import time

import pytest

import cascade_core as cs


class Meter:
    """What the tasks record: how many run at once (the peak), and when each started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.calls = 0

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
            self.starts.append(time.monotonic())

    def leave(self) -> None:
        with self.lock:
            self.running -= 1
            self.ends.append(time.monotonic())


def metered(meter: Meter, seconds: float, **options):
    """A task that records itself in ``meter``, runs ``seconds`` and returns its argument."""

    @cs.task(**options)
    def call(i: int) -> int:
        meter.enter()
        time.sleep(seconds)
        meter.leave()
        return i

    return call


@pytest.fixture(params=["memory", "sqlite"])
def state(request, tmp_path):
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"


def test_no_more_than_the_concurrency_run_at_once(state):
    meter = Meter()
    call = metered(meter, 0.05, limits=["api"])
    cs.set_limit(state, "api", concurrency=3)
    assert cs.run([call(i) for i in range(24)], state_backend=state, max_workers=8) == list(range(24))
    assert meter.peak == 3 and meter.calls == 24
    span = max(meter.ends) - min(meter.starts)  # as the tasks saw it
    assert 8 * 0.05 / span >= 0.8  # 8 rounds of 3: at least 80% of what 3 slots allow


def test_a_rate_spaces_the_starts(state):
    meter = Meter()
    call = metered(meter, 0.0, limits=["api"])
    cs.set_limit(state, "api", rate="20/s")
    began = time.monotonic()
    cs.run([call(i) for i in range(21)], state_backend=state, max_workers=8)
    assert time.monotonic() - began >= 0.95  # 21 starts, 1/20 s apart
    starts = sorted(meter.starts)
    most = max(sum(1 for t in starts if first <= t < first + 1.0) for first in starts)
    assert most <= 20 + 1  # the burst (1 by default)


def test_a_limit_nothing_set_fails_the_plan_naming_it(state):
    meter = Meter()

    @cs.task(limits=["nowhere"], name="needs_nowhere")
    def call() -> int:
        meter.enter()
        return 1

    with pytest.raises(cs.LimitError) as caught:
        cs.run(call(), state_backend=state)
    message = str(caught.value)
    assert "task 'needs_nowhere' names limit 'nowhere', which is not set in" in message
    assert "cascade limits set nowhere --concurrency N" in message and "\n" not in message
    assert meter.calls == 0


def test_a_backend_without_limits_is_an_error_not_a_no_op():
    from cascade_core.backends.memory import MemoryStateStore

    bound = MemoryStateStore()("r")  # a bound backend: the store's limits are not reachable from it

    @cs.task(limits=["api"])
    def call() -> int:
        return 1

    with pytest.raises(cs.LimitError, match="keeps no limits"):
        cs.run(call(), state_backend=bound)
    with pytest.raises(cs.LimitError, match="keeps no limits"):
        cs.set_limit(bound, "api", concurrency=1)


def test_pausing_stops_new_starts_and_resuming_finishes_the_run(state):
    meter = Meter()
    call = metered(meter, 0.05, limits=["api"])
    cs.set_limit(state, "api", concurrency=2)
    from cascade_core._run.limit_admin import opened_limits

    def operator() -> None:
        while meter.calls < 4:
            time.sleep(0.005)
        with opened_limits(state) as (store, _):
            store.pause_limit("api", True)
            paused_at = time.monotonic()
            time.sleep(0.6)
            late.extend(start for start in meter.starts if start > paused_at + 0.3)  # within a handover (0.25 s)
            store.pause_limit("api", False)

    late: list[float] = []
    thread = threading.Thread(target=operator)
    thread.start()
    assert cs.run([call(i) for i in range(12)], state_backend=state, max_workers=4) == list(range(12))
    thread.join()
    assert late == [] and meter.calls == 12  # nothing started while paused, nothing ran twice


def test_waiting_on_a_limit_is_recorded_in_the_run_info(tmp_path):
    state = f"sqlite:///{tmp_path / 'runs.db'}"

    @cs.task(limits=["one"])
    def call(i: int) -> int:
        time.sleep(0.05)
        return i

    cs.set_limit(state, "one", concurrency=1)
    cs.run([call(i) for i in range(4)], state_backend=state, run_id="w", max_workers=4)
    from cascade_core.backends.sqlite import SqliteStateStore

    store = SqliteStateStore(tmp_path / "runs.db")
    info = store("w").get_run_info()
    store.close()
    assert float(info["waited_limits_s"]) >= 0.05 * (1 + 2 + 3) * 0.8  # 3 tasks waited 1, 2 and 3 turns
    assert float(info["waited_resources_s"]) == 0.0


def test_a_timed_out_attempt_frees_its_slot():
    attempts: list[int] = []

    @cs.task(limits=["api"], timeout=0.1, retries=1)
    def hang() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(0.5)
        return 1

    cs.set_limit("memory://", "api", concurrency=1)
    assert cs.run(hang()) == 1 and len(attempts) == 2


def test_resources_never_exceed_the_runs_totals():
    meter = Meter()
    small = metered(meter, 0.03, resources={"gpu": 1}, name="small")
    big = metered(meter, 0.03, resources={"gpu": 2}, name="big")

    results = cs.run([small(i) for i in range(6)] + [big(i) for i in range(2)], resources={"gpu": 2}, max_workers=8)
    assert results == [0, 1, 2, 3, 4, 5, 0, 1]
    assert meter.peak == 2 and meter.calls == 8


def test_a_task_needing_more_than_the_run_has_fails_the_plan():
    @cs.task(resources={"gpu": 4}, name="hungry")
    def hungry() -> int:
        return 1

    with pytest.raises(cs.LimitError, match=r"task 'hungry' needs 4 of resource 'gpu', more than the run's 2"):
        cs.run(hungry(), resources={"gpu": 2})
    with pytest.raises(cs.LimitError, match=r"task 'hungry' needs resource 'gpu', which the run does not have"):
        cs.run(hungry(), resources={"memory_gb": 32})


@pytest.mark.parametrize(
    "options, words",
    [
        ({"concurrency": 0}, "concurrency must be a whole number from 1"),
        ({"concurrency": -1}, "concurrency must be a whole number from 1"),
        ({"concurrency": 1.5}, "concurrency must be a whole number from 1"),
        ({"concurrency": True}, "concurrency must be a whole number from 1"),
        ({"rate": "10/x"}, "is not a rate"),
        ({"rate": "0/s"}, "is not a rate"),
        ({"rate": "nan/s"}, "is not a rate"),
        ({"rate": "inf/s"}, "is not a rate"),
        ({"rate": 10}, "is not a rate"),
        ({}, "needs a concurrency, a rate or both"),
        ({"concurrency": 1, "burst": 2}, "a burst needs a rate"),
        ({"rate": "1/s", "burst": 0}, "burst must be a whole number from 1"),
    ],
)
def test_bad_limit_settings_are_one_line_errors(options, words):
    with pytest.raises(cs.LimitError) as caught:
        cs.set_limit("memory://", "api", **options)
    assert words in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"limits": "api"}, "limits must be a list of names"),
        ({"limits": ["bad name"]}, "limit name 'bad name' must be 1 to 100 letters"),
        ({"resources": {"gpu": 0}}, "resource 'gpu' must be a finite number greater than 0"),
        ({"resources": {"gpu": -1}}, "resource 'gpu' must be a finite number greater than 0"),
        ({"resources": {"gpu": float("nan")}}, "resource 'gpu' must be a finite number greater than 0"),
        ({"resources": {"gpu": float("inf")}}, "resource 'gpu' must be a finite number greater than 0"),
        ({"resources": ["gpu"]}, "resources must be a dict"),
    ],
)
def test_bad_task_limits_and_resources_are_one_line_errors(options, words):
    with pytest.raises(cs.DefinitionError) as caught:
        cs.task(**options)(lambda: 1)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_bad_run_totals_are_one_line_errors():
    task = cs.task(lambda: 1)
    for totals, words in (({"gpu": 0}, "must be a finite number greater than 0"), ({"": 1}, "resource name ''")):
        with pytest.raises(cs.DefinitionError, match=words):
            cs.run(task(), resources=totals)


def test_a_map_over_a_value_known_only_at_run_time_is_limited():
    meter = Meter()
    call = metered(meter, 0.03, limits=["api"], name="mapped_call")

    @cs.task
    def items(n: int) -> list[int]:
        return list(range(n))

    cs.set_limit("memory://", "api", concurrency=2)
    assert cs.run(call.map(items(8)), max_workers=8) == list(range(8))
    assert meter.peak == 2 and meter.calls == 8
    unset = cs.task(limits=["nowhere"], name="unset_mapped")(lambda x: x)
    with pytest.raises(cs.LimitError, match="task 'unset_mapped' names limit 'nowhere', which is not set"):
        cs.run(unset.map(items(3)))


RETURNED = Meter()  # the module-level tasks below record here: a returned graph's tasks must be importable


@cs.task(limits=["api"], name="returned_call")
def returned_call(i: int) -> int:
    RETURNED.enter()
    time.sleep(0.03)
    RETURNED.leave()
    return i


@cs.task(name="fan_out")
def fan_out(n: int):
    return [returned_call(i) for i in range(n)]


@cs.task(limits=["api"], name="first")
def first() -> int:
    return 4


def test_a_returned_graph_is_limited_or_refused_never_ignored():
    cs.set_limit("memory://", "api", concurrency=2)
    assert cs.run(fan_out(first()), max_workers=8) == [0, 1, 2, 3]  # the run's graph names the limit
    assert RETURNED.peak == 2 and RETURNED.calls == 4
    with pytest.raises(cs.LimitError, match="task 'fan_out' returned a graph whose task 'returned_call' names limits"):
        cs.run(fan_out(3), max_workers=8)  # no gate: refused, not run unlimited
