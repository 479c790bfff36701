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


def add_fn(x: int, y: int) -> int:
    return x + y


def mix3_fn(a: int, b: int, c: int) -> int:
    return (a + b + c) % 1_000_003  # bounded: payloads stay the size of the other shapes'


cached_add = cs.task(name="bench.cached_add", cache=True, version="1")(add_fn)
cached_mix3 = cs.task(name="bench.cached_mix3", cache=True, version="1")(mix3_fn)

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


# Fan-in shapes of about 10,000 cached tasks for the warm rerun (scenario 3): every task caches.


def tree(n: int, group: int = 100) -> Any:
    """Two levels: n leaves summed in groups of ``group``, the group sums totalled."""
    groups = [
        cached_total([cached_inc(i) for i in range(start, min(start + group, n))]) for start in range(0, n, group)
    ]
    return cached_total(groups)


def chain_of_fans(n: int, width: int = 1000) -> Any:
    """Fans of ``width`` in a chain: each fan's tasks take the previous fan's total and an int."""
    x: Any = 0
    for _ in range(max(1, n // width)):
        x = cached_total([cached_add(x, i) for i in range(width)])
    return x


def lattice(n: int, width: int = 100) -> Any:
    """Layers of ``width`` tasks, each taking three upstream results (its neighbours in the
    layer before, wrapping around): many diamonds; the last layer is totalled."""
    layer = [cached_inc(i) for i in range(width)]
    for _ in range(max(1, n // width) - 1):
        layer = [cached_mix3(layer[i - 1], layer[i], layer[(i + 1) % width]) for i in range(width)]
    return cached_total(layer)


FAN_IN_SHAPES = {
    "flat fan-in": lambda n: fan(n, cached_inc, cached_total),
    "tree (groups of 100)": tree,
    "chain of fans (of 1,000)": chain_of_fans,
    "lattice (3 upstreams each)": lattice,
}


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
