"""The collector is paused while the engine alone works, and on while tasks run (_gc.py)."""

from __future__ import annotations

import gc

import pytest

import cascade_core as cs


@cs.task(name="tests.gc_pause.leaf", cache=True, version="1")
def leaf(i: int) -> int:
    return i


@cs.task(name="tests.gc_pause.total", cache=True, version="1")
def total(xs: list[int]) -> int:
    return sum(xs)


@cs.task(name="tests.gc_pause.collector_on")
def collector_on() -> bool:
    return gc.isenabled()


def _collections_during(fn) -> list[int]:
    generations: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            generations.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        fn()
    finally:
        gc.callbacks.remove(seen)
    return generations


def test_a_warm_rerun_of_thousands_of_nodes_makes_no_collection_and_leaves_the_collector_on():
    cache = cs.MemoryCacheBackend()
    n = 5000
    assert cs.run(total([leaf(i) for i in range(n)]), cache_backend=cache) == n * (n - 1) // 2
    target = total([leaf(i) for i in range(n)])  # the user's own calls may collect: built outside
    gc.collect()
    made = _collections_during(lambda: cs.run(target, cache_backend=cache))
    assert made == []  # without the pause: dozens of collections walking the graph
    assert gc.isenabled()


def test_tasks_run_with_the_collector_on_and_a_paused_caller_stays_paused():
    assert cs.run(collector_on()) is True
    gc.disable()
    try:
        assert cs.run(collector_on()) is False  # the caller's own pause is left alone
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failed_run_leaves_the_collector_on():
    @cs.task(name="tests.gc_pause.broken")
    def broken() -> None:
        raise ValueError("planned")

    with pytest.raises(cs.CascadeError):
        cs.run(cs.Param("missing"))  # a param without a value: refused while paused
    assert gc.isenabled()
    with pytest.raises(cs.TaskFailed, match="planned"):
        cs.run(broken())
    assert gc.isenabled()
