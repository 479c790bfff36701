"""The graphs every scenario builds: trivial tasks in a chain, or a fan-out into a reduce.

Graph building is part of every timing: the builders below are called inside the timed code.
"""

from __future__ import annotations

from typing import Any

import cascade_core as cs


def inc_fn(x: int) -> int:
    return x + 1


def total_fn(xs: list[int]) -> int:
    return sum(xs)


inc = cs.task(name="bench.inc")(inc_fn)
total = cs.task(name="bench.total")(total_fn)
cached_inc = cs.task(name="bench.cached_inc", cache=True, version="1")(inc_fn)
cached_total = cs.task(name="bench.cached_total", cache=True, version="1")(total_fn)

# The reduce of the resume scenario fails while FAIL["on"] is true.
FAIL = {"on": False}


@cs.task(name="bench.flaky_total")
def flaky_total(xs: list[int]) -> int:
    if FAIL["on"]:
        raise RuntimeError("planned failure (resume benchmark)")
    return sum(xs)


def chain(n: int, task: Any = inc) -> Any:
    x: Any = 0
    for _ in range(n):
        x = task(x)
    return x


def fan(n: int, task: Any = inc, reduce: Any = total) -> Any:
    return reduce([task(i) for i in range(n)])


def plain_chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = inc_fn(x)
    return x


def plain_fan(n: int) -> int:
    return total_fn([inc_fn(i) for i in range(n)])


def dask_chain(n: int) -> Any:
    from dask import delayed

    f = delayed(inc_fn)
    x: Any = 0
    for _ in range(n):
        x = f(x)
    return x


def dask_fan(n: int) -> Any:
    from dask import delayed

    f = delayed(inc_fn)
    return delayed(total_fn)([f(i) for i in range(n)])
