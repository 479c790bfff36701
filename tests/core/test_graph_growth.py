"""A graph grows (Graph.add, cascade_core/_build/graph.py): nodes added to a built graph get
the ids they would have had in a graph built whole, and links to the nodes it had."""

from __future__ import annotations

import pytest

import cascade_core as cs
from cascade_core._build.graph import build_graph


@cs.task
def leaf(i: int) -> int:
    return i


@cs.task(cache=True)
def pair(a: int, b: int, scale: int = 1) -> int:
    return (a + b) * scale


@cs.task
def total(xs: list[int]) -> int:
    return sum(xs)


def shape():
    leaves = [leaf(i) for i in range(4)]
    pairs = [pair(leaves[i], leaves[i + 1], scale=2) for i in range(3)]
    return leaves, pairs, total(pairs)


def test_added_nodes_get_the_ids_of_a_whole_build():
    leaves, pairs, top = shape()
    whole = build_graph(top)
    part = build_graph(leaves)
    added = part.add([top])
    assert list(added) == list(range(4, len(whole)))
    assert sorted(node.id for node in part.nodes) == sorted(node.id for node in whole.nodes)
    by_id = {node.id: node for node in whole.nodes}
    for node in part.nodes:
        twin = by_id[node.id]
        assert node.hash == twin.hash and node.key_digest == twin.key_digest
        ups = {part.nodes[up].id for up in node.upstream}
        assert ups == {whole.nodes[up].id for up in twin.upstream}


def test_links_built_before_the_growth_are_extended():
    leaves, pairs, top = shape()
    graph = build_graph(leaves)
    assert graph.downstream == [[], [], [], []]
    graph.add([top])
    links = graph.downstream
    assert len(links) == len(graph.nodes)
    top_index = graph.index_of[id(top)]
    for lazy in pairs:
        assert links[graph.index_of[id(lazy)]] == [top_index]
    assert sorted(links[graph.index_of[id(leaves[1])]]) == sorted(graph.index_of[id(p)] for p in pairs[:2])


def test_adding_what_the_graph_has_adds_nothing():
    leaves, pairs, top = shape()
    graph = build_graph(top)
    assert graph.add([top, *pairs]) == range(len(graph), len(graph))


def test_repeated_calls_added_later_keep_distinct_ids():
    first = leaf(7)
    graph = build_graph(first)
    again = leaf(7)  # the same call: a second node, as in a whole build
    graph.add([again])
    whole = build_graph([leaf(7), leaf(7)])
    assert sorted(node.id for node in graph.nodes) == sorted(node.id for node in whole.nodes)
    assert len({node.id for node in graph.nodes}) == 2


def test_an_ordering_to_a_node_the_graph_has_is_kept():
    base = leaf(1)
    graph = build_graph(base)
    later = leaf(2).after(base)
    (index,) = graph.add([later])
    assert graph.nodes[index].upstream == (graph.index_of[id(base)],)


def test_a_param_the_run_lacks_is_refused():
    graph = build_graph(leaf(1))
    with pytest.raises(cs.ParamError, match=r"param 'n' appears in nodes added during the run, but the run has no"):
        graph.add([leaf(cs.Param("n", default=3))])
