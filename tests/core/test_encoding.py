"""The encoder's fast paths give the definition's bytes (encode_inputs) on every argument shape,
and decline rather than guess on the shapes they do not know."""

from __future__ import annotations

import pytest

import cascade_core as cs
from cascade_core._build.encoding import build_inputs, encode, encode_inputs, key_inputs
from cascade_core._build.graph import Node, build_graph


@cs.task(name="enc.leaf", cache=True, version="1")
def leaf(x):
    return x


@cs.task(name="enc.many", cache=True)
def many(*xs, **named):
    return len(xs)


@cs.task(name="enc.kw", cache=True)
def kw(a, b=2, *, c=3):
    return a


N = cs.Param("n", default=3, type=int)


def _shapes():
    a, b, c = leaf(1), leaf(2), leaf(3)
    return {
        "no argument": many(),
        "scalars only": many(1, "s", 1.5, None, True, b"b", 10**30),
        "a list of scalars": many([1, 2], (3,)),
        "several upstreams": many(a, b, c),
        "one upstream twice": many(a, a),
        "one upstream first": many(a, 5),
        "one upstream last": many(5, 1.5, a),
        "one upstream among scalars": many(7, "s", a, 5, None),
        "upstreams and scalars": many(a, 5, b, "s"),
        "a fan-in list": many([a, b, c]),
        "a fan-in tuple": many((a, b)),
        "a fan-in list and an upstream": many([a, b], c),
        "a mixed list": many([a, [b, c], 5]),
        "a nested list": many([[a, b], c]),
        "a dict fan-in": many({"x": a, "y": b}),
        "a set of scalars": many({1, 2, 3}),
        "a keyword": many(a, named=b),
        "defaults filled in": kw(a),
        "keyword-only": kw(a, c=b),
        "a param": many(a, N),
        "a param in a list": many([a, N]),
        "ordering": many(a, b).after(c),
        "star-args fan-in": many(*[leaf(i) for i in range(5)]),
    }


SHAPES = list(_shapes())


def _node(shape):
    graph = build_graph([_shapes()[shape], many(N)], {"n": 4})  # every graph declares the param
    return graph, graph.nodes[graph.targets[0]]


@pytest.mark.parametrize("shape", SHAPES)
def test_build_inputs_gives_the_definitions_bytes_and_a_true_head_and_tail(shape):
    graph, built = _node(shape)
    refs = graph._built.refs
    node = Node(built.index, built.lazy)  # as the build makes it
    node.data_deps = built.data_deps
    inputs = build_inputs(node, refs.__getitem__, graph)
    assert inputs == encode_inputs(node.lazy, graph, graph.params)
    if node.head is not None:  # the form a cache key is computed from without a walk
        assert inputs == node.head + b"".join(refs[i] for i in node.data_deps) + node.tail
    assert (built.head, built.tail) == (node.head, node.tail)  # what the build kept


@pytest.mark.parametrize("shape", SHAPES)
def test_key_inputs_gives_the_definitions_bytes_or_declines(shape):
    graph, node = _node(shape)
    tokens = [f"enc.t:{i:032x}" for i in range(len(graph.nodes))]
    refs: list[bytes | None] = [b"r" + token.encode() for token in tokens]
    fast = key_inputs(node, refs, graph.index_of)
    if fast is not None:
        assert fast == encode_inputs(node.lazy, graph, graph.params, tokens)
    if node.data_deps:  # an upstream without a token yet: no key
        refs[node.data_deps[-1]] = None
        assert key_inputs(node, refs, graph.index_of) is None


FAST_FOR_KEYS = [
    "several upstreams",
    "one upstream twice",
    "one upstream first",
    "one upstream last",
    "one upstream among scalars",
    "upstreams and scalars",
    "a fan-in list",
    "a fan-in tuple",
    "a fan-in list and an upstream",
    "star-args fan-in",
]


@pytest.mark.parametrize("shape", FAST_FOR_KEYS)
def test_the_common_shapes_take_a_fast_path(shape):
    graph, node = _node(shape)
    refs: list[bytes | None] = [b"r" + n.hash.encode() for n in graph.nodes]
    assert key_inputs(node, refs, graph.index_of) is not None


def test_the_value_encoding_is_pinned():
    # The resume contract: a change here changes every stored node id and cache key.
    assert encode(5) == b"i5;"
    assert encode(-12) == b"i-12;"
    assert encode("ab") == b"s\x00\x00\x00\x00\x00\x00\x00\x02ab"
    assert encode(None) == b"N"
    assert encode(True) == b"T"
    assert encode(1.5) == b"f?\xf8\x00\x00\x00\x00\x00\x00"
    assert encode([1, (2,)]) == b"l\x00\x00\x00\x00\x00\x00\x00\x02i1;t\x00\x00\x00\x00\x00\x00\x00\x01i2;"
    assert encode({"b": 1, "a": 2}) == encode({"a": 2, "b": 1})
    assert encode({2, 1}) == b"S\x00\x00\x00\x00\x00\x00\x00\x02i1;i2;"
