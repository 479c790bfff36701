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


def pair_fn(a: int, b: int, scale: int) -> int:
    return (a + b) * scale % 1_000_003


def pair_kwonly_fn(a: int, b: int, *, scale: int) -> int:
    return (a + b) * scale % 1_000_003


def pair_default_fn(a: int, b: int, scale: int = 2) -> int:
    return (a + b) * scale % 1_000_003


def total_star_fn(*xs: int) -> int:
    return sum(xs)


def total_dict_fn(xs: dict[str, int]) -> int:
    return sum(xs.values())


def total_nested_fn(groups: list[list[int]]) -> int:
    return sum(map(sum, groups))


cached_pair = cs.task(name="bench.cached_pair", cache=True, version="1")(pair_fn)
cached_pair_kwonly = cs.task(name="bench.cached_pair_kwonly", cache=True, version="1")(pair_kwonly_fn)
cached_pair_default = cs.task(name="bench.cached_pair_default", cache=True, version="1")(pair_default_fn)
cached_total_star = cs.task(name="bench.cached_total_star", cache=True, version="1")(total_star_fn)
cached_total_dict = cs.task(name="bench.cached_total_dict", cache=True, version="1")(total_dict_fn)
cached_total_nested = cs.task(name="bench.cached_total_nested", cache=True, version="1")(total_nested_fn)


def pairs(n: int, call: Any, width: int = 100) -> Any:
    """``width`` leaves, then one task per ordered pair of distinct leaves (9,900 for 100) made by
    ``call(a, b)``, totalled: about ``n`` cached tasks whose calls have the shape ``call`` gives."""
    leaves = [cached_inc(i) for i in range(width)]
    calls = [call(leaves[i], leaves[j]) for i in range(width) for j in range(width) if i != j]
    return cached_total(calls[: max(1, n - width)])


# Every shape a user's calls take, about 10,000 cached tasks each (scenario 3; CI checks them all).
FAN_IN_SHAPES = {
    "flat fan-in": lambda n: fan(n, cached_inc, cached_total),
    "tuple fan-in": lambda n: cached_total(tuple(cached_inc(i) for i in range(n))),
    "dict fan-in": lambda n: cached_total_dict({f"k{i}": cached_inc(i) for i in range(n)}),
    "nested fan-in (lists of 100)": lambda n: cached_total_nested(
        [[cached_inc(i) for i in range(start, min(start + 100, n))] for start in range(0, n, 100)]
    ),
    "star-args fan-in": lambda n: cached_total_star(*[cached_inc(i) for i in range(n)]),
    "positional pairs: f(a, b, 2)": lambda n: pairs(n, lambda a, b: cached_pair(a, b, 2)),
    "keyword pairs: f(a, b, scale=2)": lambda n: pairs(n, lambda a, b: cached_pair(a, b, scale=2)),
    "keyword-only pairs: f(a, b, *, scale)": lambda n: pairs(n, lambda a, b: cached_pair_kwonly(a, b, scale=2)),
    "defaults filled in: f(a, b)": lambda n: pairs(n, cached_pair_default),
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
