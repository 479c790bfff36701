"""The engine's caching: hits, keys from code and inputs, policies, TTLs, warm reruns."""

from __future__ import annotations

import threading

import pytest

import cascade_core as cs
from cascade_core.testing.clock import frozen_clock


def test_cache_hit_skips_execution_and_still_records_state(counter):
    @cs.task(cache=True)
    def expensive(x):
        counter.hit("expensive")
        return {"x": x}

    store = cs.MemoryStateStore()
    cache = cs.MemoryCacheBackend()
    assert cs.run(expensive(1), state_backend=store, cache_backend=cache, run_id="a") == {"x": 1}
    assert cs.run(expensive(1), state_backend=store, cache_backend=cache, run_id="b") == {"x": 1}
    assert counter["expensive"] == 1
    assert len(store("b").result_ids()) == 1  # the target's hit is copied into the second run's state
    assert cs.run(expensive(2), state_backend=store, cache_backend=cache, run_id="c") == {"x": 2}
    assert counter["expensive"] == 2


def test_none_is_a_cacheable_value(counter):
    @cs.task(cache=True)
    def nothing():
        counter.hit("nothing")

    cache = cs.MemoryCacheBackend()
    assert cs.run(nothing(), cache_backend=cache) is None
    assert cs.run(nothing(), cache_backend=cache) is None
    assert counter["nothing"] == 1


def test_cache_key_covers_code_version_and_inputs(counter):
    cache = cs.MemoryCacheBackend()

    def make(version):
        @cs.task(cache=True, version=version, name="versioned")
        def versioned(x):
            counter.hit(version)
            return x

        return versioned

    v1, v2 = make("1"), make("2")
    cs.run(v1(5), cache_backend=cache)
    cs.run(v1(5), cache_backend=cache)
    cs.run(v2(5), cache_backend=cache)
    assert counter["1"] == 1 and counter["2"] == 1
    keys = list(cache._entries)
    assert len(keys) == 2 and all(key.startswith("versioned:") for key in keys)


def test_cache_of_downstream_follows_upstream_values_when_upstream_is_not_cached(counter, tmp_path):
    source = tmp_path / "value.txt"
    source.write_text("1")

    @cs.task
    def read():
        return int(source.read_text())

    @cs.task(cache=True)
    def square(x):
        counter.hit("square")
        return x * x

    cache = cs.MemoryCacheBackend()
    assert cs.run(square(read()), cache_backend=cache) == 1
    assert cs.run(square(read()), cache_backend=cache) == 1
    assert counter["square"] == 1
    source.write_text("3")
    assert cs.run(square(read()), cache_backend=cache) == 9
    assert counter["square"] == 2


def test_cache_policy_composition_and_run_id_policy(counter):
    @cs.task(cache=cs.INPUTS + cs.RUN_ID)
    def per_run(x):
        counter.hit("per_run")
        return x

    cache = cs.MemoryCacheBackend()
    cs.run([per_run(1), per_run(1).after()], cache_backend=cache, run_id="one")
    cs.run(per_run(1), cache_backend=cache, run_id="one-again")
    assert counter["per_run"] == 2  # the in-run duplicate waits for the first; a new run id misses
    assert repr(cs.INPUTS + cs.TASK_SOURCE + cs.INPUTS) == "INPUTS + TASK_SOURCE"


def test_cache_ttl_expires_entries(counter):
    @cs.task(cache=True, cache_ttl=0.2)
    def short_lived():
        counter.hit("short")
        return 1

    cache = cs.MemoryCacheBackend()
    with frozen_clock() as clock:
        cs.run(short_lived(), cache_backend=cache)
        clock.advance(0.19)
        cs.run(short_lived(), cache_backend=cache)
        assert counter["short"] == 1
        clock.advance(0.02)
        cs.run(short_lived(), cache_backend=cache)
        assert counter["short"] == 2


def test_unhashable_cache_input_names_task_and_argument():
    @cs.task(cache=True, name="hash_me")
    def hash_me(a, lock):
        return a

    with pytest.raises(cs.HashingError) as error:
        cs.run(hash_me(1, lock=threading.Lock()))
    assert error.value.task == "hash_me"
    assert error.value.argument == "lock"
    assert "'lock'" in str(error.value) and "hash_me" in str(error.value)


def test_warm_rerun_of_cached_chain_executes_nothing_and_reads_the_cache_once(counter):
    @cs.task(cache=True)
    def step(x):
        counter.hit("step")
        return x + 1

    class CountingCache(cs.MemoryCacheBackend):
        def __init__(self):
            super().__init__()
            self.get_calls = 0

        def get_many(self, keys):
            self.get_calls += 1
            return super().get_many(keys)

    cache = CountingCache()
    node = step(0)
    for _ in range(199):
        node = step(node)
    assert cs.run(node, cache_backend=cache) == 200
    cache.get_calls = 0
    assert cs.run(node, cache_backend=cache) == 200
    assert counter["step"] == 200
    assert cache.get_calls == 1
