"""A call's arguments are bound from a template built once per node, upstreams by node index:
the values are the call's own with every upstream result and param filled in, and a node
pickled into another process (new identities) binds the same way."""

from __future__ import annotations

import pickle

import pytest

import cascade_core as cs
from cascade_core._build.graph import build_graph
from cascade_core._build.task import LazyResult, Param
from cascade_core._build.values import call_arguments


@cs.task(name="bind.leaf")
def leaf(x):
    return x


@cs.task(name="bind.many")
def many(*xs, **named):
    return len(xs)


N = cs.Param("n", default=3, type=int)


def _shapes():
    a, b, c = leaf(1), leaf(2), leaf(3)
    return {
        "scalars only": many(1, "s", [1, 2]),
        "only upstreams": many(a, b, a),
        "upstreams and scalars": many(a, 5, b),
        "a fan-in list": many([a, b, c]),
        "a fan-in tuple and an empty list": many((a, b), []),
        "nested containers": many([a, [b, {"k": c}]], {1, 2}, frozenset({a})),
        "a dict with an upstream as key": many({a: "x", "y": b}),
        "keywords": many(a, named=b, other=[c, 5]),
        "params": many(N, [a, N], named=N),
    }


def _expected(value, graph, results, params):
    """The call's own arguments with every lazy result and param replaced (the definition)."""
    kind = type(value)
    if kind is LazyResult:
        return results[graph.index_of[id(value)]]
    if kind is Param:
        return params[value.name]
    if kind in (list, tuple, set, frozenset):
        return kind(_expected(item, graph, results, params) for item in value)
    if kind is dict:
        return {
            _expected(key, graph, results, params): _expected(item, graph, results, params)
            for key, item in value.items()
        }
    return value


@pytest.mark.parametrize("shape", list(_shapes()))
def test_bound_arguments_are_the_calls_own_with_results_filled_in(shape):
    graph = build_graph([_shapes()[shape], many(N)], {"n": 4})  # every graph declares the param
    results = [f"value of {node.index}" for node in graph.nodes]
    node = graph.nodes[graph.targets[0]]
    unbound = pickle.dumps(node)
    args, kwargs = call_arguments(node, results, graph.params)
    assert args == _expected(node.lazy.args, graph, results, graph.params)
    assert kwargs == _expected(node.lazy.kwargs, graph, results, graph.params)
    # A node pickled into another process has new identities; its upstreams are found by index,
    # whether its template was built before it was pickled or after.
    assert call_arguments(pickle.loads(pickle.dumps(node)), results, graph.params) == (args, kwargs)
    assert call_arguments(pickle.loads(unbound), results, graph.params) == (args, kwargs)


def test_a_task_that_changes_its_list_argument_does_not_change_its_next_attempt():
    a, b = leaf(1), leaf(2)
    graph = build_graph(many([a, b], [7]))
    node = graph.nodes[graph.targets[0]]
    results = [10, 20, None]
    first, _ = call_arguments(node, results, graph.params)
    first[0].append("changed")
    first[1].append("changed")
    assert call_arguments(node, results, graph.params)[0] == ([10, 20], [7])


def test_a_retried_call_sees_the_same_arguments():
    attempts: list[tuple] = []

    @cs.task(name="bind.flaky", retries=1)
    def flaky(xs, k=None):
        attempts.append((list(xs), k))
        xs.append("changed")
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return len(xs)

    assert cs.run(flaky([leaf(1), leaf(2)], k=leaf(3)), executor="inline://") == 3
    assert attempts == [([1, 2], 3), ([1, 2], 3)]
