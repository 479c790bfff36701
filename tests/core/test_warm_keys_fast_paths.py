"""The fast paths of node ids and prefetched cache keys agree with the general definitions on
every fan-in shape (bench/ measures warm reruns of these shapes)."""

from __future__ import annotations

import struct

import pytest

import cascade_core as cs
from cascade_core._build.cache_policy import key_maker, merkle_material
from cascade_core._build.encoding import encode_inputs
from cascade_core._build.graph import build_graph
from cascade_core._build.hashing import digest
from cascade_core._run.cache_lookup import CacheLookup
from cascade_core._run.context import RunContext
from cascade_core._run.records import RunRecords

CALLS: list[int] = []


@cs.task(name="fast.leaf", cache=True, version="1")
def leaf(x):
    CALLS.append(x)
    return x


@cs.task(name="fast.add", cache=True, version="1")
def add(*xs):
    CALLS.append(len(xs))
    return len(repr(xs))


@cs.task(name="fast.total", cache=True, version="1")
def total(xs):
    CALLS.append(-1)
    return sum(xs)


@cs.task(name="fast.plain")
def plain(x):
    return x


def _shapes():
    a, b, c = leaf(1), leaf(2), leaf(3)
    same = leaf(4)
    return {
        "several upstreams": add(a, b, c),
        "one upstream twice": add(a, a),
        "upstreams and scalars": add(a, 5, b, "s", 1.5),
        "one upstream among scalars": add(7, "s", a, 5, None),
        "one upstream first": add(a, 5),
        "one upstream last": add(5, 1.5, a),
        "one upstream and a list of scalars": add(a, [1, 2]),
        "a fan-in list": total([a, b, c]),
        "a fan-in tuple": add((a, b)),
        "a list of lazy and ints, as long as its upstreams": add([a, [b, c], 5]),
        "nested list": add([[a, b], c]),
        "a list and an upstream": add([a, b], c),
        "an upstream that does not cache": add(a, plain(same)),
        "a chain of fans": total([add(total([add(a, i) for i in range(3)]), i) for i in range(3)]),
        "no argument": add(),
        "an empty list after a node with upstreams": [add(a, b), total([]), add([]), total(())],
        "ordering": add(a, b).after(c),
        "a keyword": leaf(x=a),
    }


def _defined_hash(node, graph):
    """A node's hash (its id before any occurrence suffix): its task's name, its policy's part
    when that allows the hash to be its cache key, its inputs (upstreams by their hashes)."""
    name = node.task.name.encode()
    material = merkle_material(node.task) or b""
    return digest(struct.pack(">I", len(name)) + name + material + encode_inputs(node.lazy, graph, graph.params))


@pytest.mark.parametrize("shape", list(_shapes()))
def test_ids_and_prefetched_keys_match_their_definitions(shape):
    graph = build_graph(_shapes()[shape])
    seen: dict[str, int] = {}
    # A node's hash is its cache key's digest when its policy allows it and every upstream's
    # hash is that upstream's key digest (whatever the shape of its arguments).
    key_digest: list[str | None] = [None] * len(graph.nodes)
    for node in graph.nodes:
        defined = _defined_hash(node, graph)
        upstream_keys = all(key_digest[d] is not None for d in node.data_deps)
        if merkle_material(node.task) is not None and upstream_keys:
            key_digest[node.index] = defined
        assert node.hash == defined, node.task.name
        occurrence = seen[defined] = seen.get(defined, -1) + 1
        if occurrence:  # identical calls (the chain of fans has some): an occurrence suffix
            defined = digest(f"{defined}#{occurrence}".encode())
        assert node.id == defined, node.task.name
        assert node.key_digest == key_digest[node.index], node.task.name
    ctx = RunContext(graph, "run-1", cs.MemoryStateStore(), cs.MemoryCacheBackend(), [])
    lookup = CacheLookup(ctx, RunRecords(ctx))
    wanted: dict[str, list[int]] = {}
    lookup._compute_keys(wanted)
    # The general definition of the others: each upstream enters by its own cache key; a node
    # downstream of one that does not cache has no key before that node has run.
    expected: list[str | None] = [None] * len(graph.nodes)
    for node in graph.nodes:
        if key_digest[node.index] is not None:
            expected[node.index] = f"{node.task.name}:{key_digest[node.index]}"
            continue
        if node.task.cache_policy is None or any(expected[d] is None for d in node.data_deps):
            continue
        expected[node.index] = key_maker(node.task, "run-1")(encode_inputs(node.lazy, graph, graph.params, expected))
    assert ctx.keys == expected
    assert sorted(i for indexes in wanted.values() for i in indexes) == [
        i for i, key in enumerate(expected) if key is not None
    ]


def test_a_warm_rerun_of_several_upstreams_runs_nothing_and_uses_the_cache():
    cache = cs.MemoryCacheBackend()
    target = list(_shapes().values())
    first = cs.run(target, cache_backend=cache)
    CALLS.clear()
    assert cs.run(list(_shapes().values()), cache_backend=cache) == first
    assert CALLS == []  # every cached task is a hit (the one downstream of an uncached task too)
