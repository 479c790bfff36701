"""Node ids and cache keys: the fast paths agree with the general definitions."""

from __future__ import annotations

import gc
import itertools
import struct

import pytest

import cascade_core as cs
from cascade_core._build.cache_policy import DEFAULT, INPUTS, RUN_ID, TASK_SOURCE, CachePolicy, KeyContext, key_maker
from cascade_core._build.encoding import encode_inputs
from cascade_core._build.gc_pause import collection_paused
from cascade_core._build.graph import build_graph
from cascade_core._build.hashing import digest


@cs.task(name="ids.inc")
def inc(x, step=1):
    return x + step


@cs.task(name="ids.total")
def total(xs, *rest):
    return sum(xs)


def _defined_id(node, graph):
    """The node id as docs/concepts.md defines it: digest(len(name), name, encoded inputs)."""
    name = node.task.name.encode()
    return digest(struct.pack(">I", len(name)) + name + encode_inputs(node.lazy, graph, graph.params))


def test_node_ids_match_their_definition_on_every_argument_shape():
    n = cs.Param("n", default=3, type=int)
    leaves = [inc(i) for i in range(4)]
    chain = inc(inc(inc(leaves[0])))
    first = inc(-7)
    later = inc(-8).after(first)  # .after(): the depth-first ordering path
    target = [
        total(leaves),  # a fan-in: a list of lazy results only
        total((leaves[0], 5, "s", 1.5, None, b"b")),  # a tuple of mixed values
        total([leaves[1], [leaves[2], {"k": leaves[3]}]], {1, 2}),  # nested containers, a set
        inc(chain, step=n),  # a keyword argument and a Param
        inc(10**30),
        inc("text"),
        inc(True),
        later,
    ]
    graph = build_graph(target, {"n": 4})
    assert len(graph.nodes) == 16
    for node in graph.nodes:
        assert node.id == _defined_id(node, graph), node.task.name


def test_identical_calls_get_an_occurrence_suffix():
    graph = build_graph([inc(1), inc(1)])
    first, second = graph.nodes
    assert first.id == _defined_id(first, graph)
    assert second.id == digest(f"{first.id}#1".encode())


_BUILTINS = [INPUTS, TASK_SOURCE, RUN_ID]


def _composed(members):
    policy = members[0]
    for member in members[1:]:
        policy = policy + member
    return policy


_COMBINATIONS = [_composed(combo) for size in (1, 2, 3) for combo in itertools.permutations(_BUILTINS, size)]


class _Salted(CachePolicy):
    """A policy written by a user: it may do anything with the context."""

    name = "SALTED"

    def parts(self, context):
        return ("salt", context.inputs_digest[::-1])


@pytest.mark.parametrize("policy", [*_COMBINATIONS, DEFAULT, _Salted(), INPUTS + _Salted()], ids=repr)
def test_cache_keys_match_their_definition_for_every_policy(policy):
    @cs.task(name="ids.cached", cache=policy, version="v\0with a NUL")
    def cached(x):
        return x

    inputs = b"t\x00\x00\x00\x00\x00\x00\x00\x01i5;"
    parts = policy.parts(KeyContext(cached, digest(inputs), "run-1"))
    expected = f"ids.cached:{digest(chr(0).join(parts).encode())}"
    make = key_maker(cached, "run-1")
    assert make(inputs) == expected
    assert make(inputs) == expected  # the primed hashers are copied, never consumed
    if INPUTS in getattr(policy, "members", (policy,)):
        assert make(inputs + b"x") != expected


def test_collection_is_paused_only_inside_and_left_alone_when_already_off():
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # whoever turned it off turns it back on
    finally:
        gc.enable()


def test_ids_and_cache_keys_keep_their_stored_format():
    """Ids and keys name stored results: a change here orphans every user's state and cache.

    Format 2 (docs/concepts.md, "Node identity"): a node of a task cached by INPUTS [+ TASK_SOURCE]
    hashes its policy's part with its name and inputs, and when its upstreams are such nodes too
    that hash is its cache key's digest. Keys of other cached nodes kept format 1 (the cached
    call below downstream of an uncached task has the key it had before).
    """

    @cs.task(name="ids.cached", cache=True, version="1")
    def cached(x):
        return x

    leaves = [inc(i) for i in range(3)]
    graph = build_graph([total(leaves, "s"), cached(leaves[0]), cached(7)])
    assert [node.id for node in graph.nodes] == [
        "7a8ab87b91b2a35e1d600d0b9d4e8aca",
        "36f56b72baf4cf71f070803488c22aee",
        "c05486af87dfa417ffb5ca59b4f47c61",
        "5a33c9774da615eda59cf58972df1fa4",
        "7df26b98f256dbad352b497adc0d1804",
        "0715201d02b2e4b537bef97aa5108a41",
    ]
    cache = cs.MemoryCacheBackend()
    cs.run([cached(7), cached(leaves[0])], cache_backend=cache)
    assert sorted(cache.get_many(["ids.cached:0715201d02b2e4b537bef97aa5108a41", "ids.cached:x"])) == [
        "ids.cached:0715201d02b2e4b537bef97aa5108a41"  # cached(7): its node id
    ]
    assert len(cache.get_many(["ids.cached:1e00feca59153b5e8b4157102f26e4a7"])) == 1  # format 1
    # A dict argument (string and other keys, lazy results, a list, a scalar): ids of uncached
    # tasks kept format 1.
    by_name = build_graph(total({"b": inc(1), "a": [inc(2), 5], 3: inc(0), "s": "text"}))
    assert by_name.nodes[-1].id == "6c43f5f5c31777cab88ecc11c9306921"


@pytest.mark.parametrize("policy", [TASK_SOURCE, DEFAULT], ids=repr)
def test_a_version_that_looks_like_the_inputs_placeholder_changes_nothing(policy):
    from cascade_core._build.cache_policy import _PLACEHOLDER

    @cs.task(name="ids.odd", cache=policy, version=f"v{_PLACEHOLDER}1")
    def odd(x):
        return x

    parts = policy.parts(KeyContext(odd, digest(b"in"), "run-1"))
    assert key_maker(odd, "run-1")(b"in") == f"ids.odd:{digest(chr(0).join(parts).encode())}"
