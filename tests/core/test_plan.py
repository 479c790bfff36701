"""The plan (_run/plan): given what the state holds and what the cache has, which nodes must run
and which stored values are loaded. Small graphs, counted by executions and by the ids the
state and the cache are asked for."""

from __future__ import annotations

import logging

import pytest

import cascade_core as cs


class RecordingState(cs.MemoryStateBackend):
    """A memory:// state backend that notes which result ids each run asked for."""

    asked: list[set[str]]

    def get_results(self, node_ids):
        wanted = set(node_ids)
        self.asked.append(wanted)
        return super().get_results(wanted)


class Recorder:
    """A state factory over one store, keeping the ids every ``get_results`` asked for."""

    def __init__(self) -> None:
        self.store = cs.MemoryStateStore()
        self.asked: list[set[str]] = []

    def __call__(self, run_id: str) -> RecordingState:
        backend = RecordingState(run_id, store=self.store)
        backend.asked = self.asked
        return backend

    def loaded(self) -> set[str]:
        return set().union(*self.asked) if self.asked else set()

    def ids(self, run_id: str) -> set[str]:
        return self.store(run_id).result_ids()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _node_ids(target, run_id: str = "probe") -> set[str]:
    """The node ids of ``target``'s graph (they do not depend on the run id): run it once apart."""
    store = cs.MemoryStateStore()
    cs.run(target, state_backend=store, run_id=run_id)
    return store(run_id).result_ids()


def test_a_fully_stored_run_runs_nothing_and_loads_only_the_target(counter, recorder):
    @cs.task(name="plan.step")
    def step(x):
        counter.hit("step")
        return x + 1

    a = step(0)
    b = step(a)
    target = step(b)
    assert cs.run(target, state_backend=recorder, run_id="r") == 3
    assert counter["step"] == 3
    (target_id,) = _node_ids(target) - _node_ids(b)
    recorder.asked.clear()
    counter.calls.clear()
    report = cs.Engine(recorder).execute(target, run_id="r")
    assert report.value == 3 and counter["step"] == 0
    assert recorder.loaded() == {target_id}
    assert report.counts["executed"] == 0 and report.counts["resumed"] == 3


def test_a_partly_stored_run_runs_the_rest_and_loads_only_their_inputs(counter, recorder, tmp_path):
    marker = tmp_path / "fail"
    marker.write_text("1")

    @cs.task(name="plan.source")
    def source(x):
        counter.hit(f"source{x}")
        return x

    @cs.task(name="plan.combine")
    def combine(*xs):
        counter.hit("combine")
        if marker.exists():
            raise RuntimeError("planned")
        return sum(xs)

    # Two sources feed `left`; a third feeds the target beside `left`. The first run stores the
    # three sources and fails at `left`.
    one, two, three = source(1), source(2), source(3)
    left = combine(one, two)
    target = combine(left, three)
    with pytest.raises(cs.TaskFailed):
        cs.run(target, state_backend=recorder, run_id="r")
    assert len(recorder.ids("r")) == 3
    marker.unlink()
    recorder.asked.clear()
    report = cs.Engine(recorder).execute(target, run_id="r")
    assert report.value == 6
    assert [counter[f"source{i}"] for i in (1, 2, 3)] == [1, 1, 1]  # not run again
    assert report.counts["executed"] == 2 and report.counts["resumed"] == 3
    # The three stored sources are all inputs of what must run: all three loaded, nothing else.
    sources = _node_ids([one, two, three])
    assert recorder.loaded() == sources


def test_a_stored_node_makes_its_upstream_unneeded_even_when_the_upstream_is_gone(counter, recorder):
    @cs.task(name="plan.up")
    def up():
        counter.hit("up")
        return 10

    @cs.task(name="plan.down")
    def down(x):
        counter.hit("down")
        return x + 1

    target = down(up())
    assert cs.run(target, state_backend=recorder, run_id="r") == 11
    up_id = next(iter(_node_ids(up())))
    del recorder.store.get("r").results[up_id]  # the upstream's result lost, the target's kept
    counter.calls.clear()
    recorder.asked.clear()
    assert cs.run(target, state_backend=recorder, run_id="r") == 11
    assert counter.total == 0 and up_id not in recorder.loaded()


def test_cache_hits_are_used_only_where_their_values_are_needed(counter, recorder):
    @cs.task(cache=True, name="plan.cached_leaf")
    def leaf(x):
        counter.hit("leaf")
        return x * 2

    @cs.task(name="plan.uncached_total")
    def total(xs):
        counter.hit("total")
        return sum(xs)

    cache = cs.MemoryCacheBackend()
    leaves = [leaf(i) for i in range(4)]
    assert cs.run(total(leaves), state_backend=recorder, cache_backend=cache, run_id="first") == 12
    assert (counter["leaf"], counter["total"]) == (4, 1)
    # A new run id: nothing stored, every leaf a cache hit; the uncached total must run, so it
    # needs each leaf's value, and the hits are copied into the new run's state.
    report = cs.Engine(recorder, cache).execute(total(leaves), run_id="second")
    assert report.value == 12 and (counter["leaf"], counter["total"]) == (4, 2)
    assert report.counts["cached"] == 4 and report.counts["executed"] == 1
    assert recorder.ids("second") == recorder.ids("first")


def test_a_stored_downstream_leaves_its_upstreams_cache_unread(counter, recorder):
    @cs.task(cache=True, name="plan.leaf_read")
    def leaf(x):
        counter.hit("leaf")
        return x

    @cs.task(name="plan.sum_read")
    def add(*xs):
        counter.hit("add")
        return sum(xs)

    reads: list[set[str]] = []

    class CountingCache(cs.MemoryCacheBackend):
        def get_many(self, keys):
            keys = set(keys)
            reads.append(keys)
            return super().get_many(keys)

    cache = CountingCache()
    target = add(*[leaf(i) for i in range(3)])
    assert cs.run(target, state_backend=recorder, cache_backend=cache, run_id="r") == 3
    reads.clear()
    counter.calls.clear()
    assert cs.run(target, state_backend=recorder, cache_backend=cache, run_id="r") == 3
    assert counter.total == 0
    assert all(not keys for keys in reads)  # the target is stored: no leaf's entry is fetched


def test_a_rerun_copies_into_its_state_only_the_cache_hits_it_uses(counter, tmp_path):
    marker = tmp_path / "fail"

    @cs.task(cache=True)
    def leaf(x):
        counter.hit("leaf")
        return x * 2

    @cs.task(cache=True)
    def cached_total(xs):
        return sum(xs)

    @cs.task
    def report(xs):
        counter.hit("report")
        if marker.exists():
            raise RuntimeError("boom")
        return sum(xs)

    store, cache = cs.MemoryStateStore(), cs.MemoryCacheBackend()
    leaves = [leaf(i) for i in range(5)]
    assert cs.run(cached_total(leaves), state_backend=store, cache_backend=cache, run_id="cold") == 20
    assert len(store("cold").result_ids()) == 6

    # Fully warm: the leaves feed only a hit, so only the target's value is copied.
    warm = cs.Engine(store, cache).execute(cached_total(leaves), run_id="warm")
    assert warm.value == 20 and warm.counts["cached"] == 6 and warm.counts["executed"] == 0
    assert len(store("warm").result_ids()) == 1
    cache.clear()
    assert cs.run(cached_total(leaves), state_backend=store, cache_backend=cache, run_id="warm") == 20
    assert counter["leaf"] == 5  # the stored target was enough

    # A task that runs uses the hits: they are copied, so a resume needs no cache.
    assert cs.run(cached_total(leaves), state_backend=store, cache_backend=cache, run_id="refill") == 20
    assert counter["leaf"] == 10
    marker.write_text("1")
    with pytest.raises(cs.TaskFailed):
        cs.run(report(leaves), state_backend=store, cache_backend=cache, run_id="crash")
    assert len(store("crash").result_ids()) == 5
    marker.unlink()
    cache.clear()
    assert cs.run(report(leaves), state_backend=store, cache_backend=cache, run_id="crash") == 20
    assert (counter["leaf"], counter["report"]) == (10, 2)


def _explode():
    raise AssertionError("unpickled a cache entry nothing needed")


class _Boom:
    def __reduce__(self):
        return (_explode, ())


def test_a_bad_cache_entry_is_read_only_when_its_value_is_used(counter, caplog):
    import pickle

    @cs.task(cache=True)
    def leaf(x):
        counter.hit("leaf")
        return x * 2

    @cs.task(cache=True)
    def cached_total(xs):
        counter.hit("total")
        return sum(xs)

    cache = cs.MemoryCacheBackend()
    leaves = [leaf(i) for i in range(3)]
    assert cs.run(cached_total(leaves), cache_backend=cache) == 6
    entries = cache._entries
    (total_key,) = [key for key in entries if ".cached_total:" in key]
    leaf_key = next(key for key in entries if ".leaf:" in key)

    # A leaf nothing reads: its entry would explode if unpickled, and it is not even checked.
    payload, expires = entries[leaf_key]
    entries[leaf_key] = (payload[:13] + pickle.dumps(_Boom()), expires)
    report = cs.Engine(cs.MemoryStateStore(), cache).execute(cached_total(leaves))
    assert report.value == 6 and report.counts["cached"] == 4 and (counter["leaf"], counter["total"]) == (3, 1)

    # The target's entry is used: it fails its check, so the target runs again, which makes
    # its upstream hits used and checked in turn; the bad leaf is recomputed, not unpickled.
    payload, expires = entries[total_key]
    entries[total_key] = (payload[:-1] + bytes([payload[-1] ^ 1]), expires)
    with caplog.at_level(logging.WARNING, logger="cascade"):
        report = cs.Engine(cs.MemoryStateStore(), cache).execute(cached_total(leaves))
    assert report.value == 6 and report.error is None
    assert report.counts["executed"] == 2 and report.counts["cached"] == 2
    assert (counter["leaf"], counter["total"]) == (4, 2)
    warned = {record.getMessage() for record in caplog.records if "ignoring cache entry" in record.getMessage()}
    assert len(warned) == 2  # the target's and the bad leaf's (read again under its cache lock)
