"""A warm rerun reads only the cache entries whose values it uses; the others it counts
(``count_entries``), so it never transfers every cached payload. Whatever the cache says
between the count and the read, the run's result is right and nothing is lost."""

from __future__ import annotations

import collections

import cascade_core as cs

RAN: collections.Counter[str] = collections.Counter()


@cs.task(name="reads.leaf", cache=True, version="1")
def leaf(i):
    RAN["leaf"] += 1
    return i * 2


@cs.task(name="reads.total", cache=True, version="1")
def total(xs):
    RAN["total"] += 1
    return sum(xs)


class Watched(cs.MemoryCacheBackend):
    """A memory cache that logs what the engine reads and counts; ``after_count`` runs once
    right after the first count (to change the cache between the count and the reads)."""

    def __init__(self):
        super().__init__()
        self.reads: list[list[str]] = []
        self.counts: list[list[str]] = []
        self.after_count = None

    def get_many(self, keys):
        keys = list(keys)
        self.reads.append(keys)
        return super().get_many(keys)

    def count_entries(self, keys):
        keys = list(keys)
        self.counts.append(keys)
        counted = super().count_entries(keys)
        if self.after_count is not None:
            action, self.after_count = self.after_count, None
            action()
        return counted


class Uncounting(Watched):
    count_entries = None  # type: ignore[assignment]  # a cache without the capability


def _graph(n=20):
    return total([leaf(i) for i in range(n)])


def _fill(cache):
    assert cs.run(_graph(), cache_backend=cache) == 380
    RAN.clear()
    cache.reads.clear()
    cache.counts.clear()


def _key_of(cache, task_name):
    return next(key for key in cache._entries if key.startswith(task_name + ":"))


def test_a_warm_rerun_reads_the_target_and_counts_the_rest():
    cache = Watched()
    _fill(cache)
    report = cs.Engine(cache_backend=cache).execute(_graph())
    assert (report.value, report.counts["cached"], RAN) == (380, 21, {})
    assert cache.reads == [[_key_of(cache, "reads.total")]]
    assert len(cache.counts) == 1 and len(cache.counts[0]) == 20


def test_without_the_capability_every_entry_is_read_once():
    cache = Uncounting()
    _fill(cache)
    report = cs.Engine(cache_backend=cache).execute(_graph())
    assert (report.value, report.counts["cached"], RAN) == (380, 21, {})
    assert [len(keys) for keys in cache.reads] == [21]


def test_a_missing_target_entry_reads_its_counted_inputs():
    cache = Watched()
    _fill(cache)
    cache.delete(_key_of(cache, "reads.total"))
    report = cs.Engine(cache_backend=cache).execute(_graph())
    assert (report.value, report.counts["cached"], RAN) == (380, 20, {"total": 1})
    assert [len(keys) for keys in cache.reads[:2]] == [1, 20]  # the target (missing), then its inputs


def test_an_entry_gone_after_the_count_runs_its_task_again():
    cache = Watched()
    _fill(cache)
    cache.delete(_key_of(cache, "reads.total"))
    leaf_keys = [key for key in cache._entries if key.startswith("reads.leaf:")]
    cache.after_count = lambda: cache.delete(leaf_keys[3])  # counted as there, gone when read
    report = cs.Engine(cache_backend=cache).execute(_graph())
    assert (report.value, RAN) == (380, {"total": 1, "leaf": 1})
    assert report.counts["cached"] == 19


def test_a_short_count_reads_every_entry_to_find_the_missing_one():
    cache = Watched()
    _fill(cache)
    cache.delete(next(key for key in cache._entries if key.startswith("reads.leaf:")))
    report = cs.Engine(cache_backend=cache).execute(_graph())
    # The target is a hit, so the missing leaf is not needed; the others are hits.
    assert (report.value, RAN) == (380, {})
    assert report.counts["cached"] == 20 and report.counts["skipped"] == 1
    assert [len(keys) for keys in cache.reads] == [1, 20]  # the target, then the 20 counted ones


def test_a_run_that_records_each_hit_reads_them_all_for_their_sizes(tmp_path):
    cache = Watched()
    _fill(cache)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    report = cs.Engine(state, cache).execute(_graph(), run_id="r1")
    assert (report.value, report.counts["cached"]) == (380, 21)
    assert [len(keys) for keys in cache.reads] == [21] and cache.counts == []
