"""A call's inputs as bytes (for node ids and cache keys) and as values (results substituted
into its arguments); the target's shape filled with computed values.

``graph`` arguments are ``_graph.Graph`` objects: upstreams are found through
``graph.index_of[id(lazy)]``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from .dynamic import Routes
from .hashing import UnhashableInput, encode
from .lazy import condition_of
from .task import LazyResult, Param


def call_arguments(lazy: LazyResult, results: list[Any], graph: Any) -> tuple[tuple, dict]:
    """The positional and keyword arguments of ``lazy`` with every upstream result and param filled in."""
    if not lazy.deps and not lazy.has_params:
        return lazy.args, lazy.kwargs
    params, index_of = graph.params, graph.index_of
    args = tuple(
        [
            results[index_of[id(arg)]] if type(arg) is LazyResult else substitute(arg, results, graph, params)
            for arg in lazy.args
        ]
    )
    kwargs = substitute(lazy.kwargs, results, graph, params) if lazy.kwargs else lazy.kwargs
    return args, kwargs


def encode_inputs(lazy: LazyResult, graph: Any, params: Mapping[str, Any], tokens: Any = None) -> bytes:
    """Deterministic bytes for a call's inputs: upstreams by node hash (or by ``tokens``), params by value."""
    encoded = encode_arg(lazy.args, graph, params, tokens)
    if lazy.kwargs:
        encoded += encode_arg(lazy.kwargs, graph, params, tokens)
    if lazy.ordering:
        encoded += b"A" + b"".join(graph.node_of(dep).hash.encode() for dep in lazy.ordering)
    condition = condition_of(lazy)
    if type(condition) is Param:  # a lazy condition is in the ordering
        encoded += b"C" + encode(params[condition.name])
    return encoded


def encode_refs(node: Any, refs: list[bytes | None], index_of: Mapping[int, int]) -> bytes | None:
    """``encode_inputs(node.lazy, graph, params, tokens)`` for the common call (positional lazy results,
    fan-in lists of them, scalars), given ``refs[i] = b"r" + tokens[i]``. None for any other call,
    or when an upstream has no token yet: then the caller takes the general path. (A node whose
    inputs are its upstreams only has a ``head`` and needs none of this.)

    A cache key of a node with upstreams costs this (its inputs with every upstream entering by
    its cache key); the general path costs several times more per argument.
    """
    lazy = node.lazy
    if lazy.kwargs or lazy.ordering or lazy.has_params:
        return None
    args = lazy.args
    parts = [b"t" + _pack(">Q", len(args))]
    try:
        for arg in args:
            kind = type(arg)
            if kind is LazyResult:
                ref = refs[index_of[id(arg)]]
                if ref is None:
                    return None
                parts.append(ref)
            elif kind is int:
                parts.append(b"i%d;" % arg)  # = encode(arg)
            elif kind is list or kind is tuple:
                if not all(type(item) is LazyResult for item in arg):
                    return None
                items = [refs[index_of[id(item)]] for item in arg]
                if None in items:
                    return None
                parts.append((b"l" if kind is list else b"t") + _pack(">Q", len(items)))
                parts.append(b"".join(items))  # type: ignore[arg-type]
            elif kind is dict or kind is set or kind is frozenset or kind is Param:
                return None
            else:
                parts.append(encode(arg))
    except UnhashableInput:
        return None  # the general path names the argument
    return b"".join(parts)


_pack = struct.pack


def encode_arg(value: Any, graph: Any, params: Mapping[str, Any], tokens: Any) -> bytes:
    kind = type(value)
    if kind is LazyResult:
        node = graph.nodes[graph.index_of[id(value)]]
        return b"r" + (node.hash if tokens is None else tokens[node.index]).encode()
    if kind is Param:
        return b"P" + encode(params[value.name])
    if kind is tuple or kind is list:
        # Lazy results inline (a fan-in passes thousands in one list); anything else recurses.
        nodes, index_of = graph.nodes, graph.index_of
        parts = [
            b"r" + (nodes[index_of[id(item)]].hash if tokens is None else tokens[index_of[id(item)]]).encode()
            if type(item) is LazyResult
            else encode_arg(item, graph, params, tokens)
            for item in value
        ]
        return (b"t" if kind is tuple else b"l") + struct.pack(">Q", len(parts)) + b"".join(parts)
    if kind is dict:
        # A fan-in by name ({"a": lazy, ...}): string keys and lazy results inline too.
        nodes, index_of = graph.nodes, graph.index_of
        parts = sorted(
            (encode(key) if type(key) is str else encode_arg(key, graph, params, tokens))
            + (
                b"r" + (nodes[index_of[id(item)]].hash if tokens is None else tokens[index_of[id(item)]]).encode()
                if type(item) is LazyResult
                else encode_arg(item, graph, params, tokens)
            )
            for key, item in value.items()
        )
        return b"d" + struct.pack(">Q", len(parts)) + b"".join(parts)
    if kind is set or kind is frozenset:
        parts = sorted(encode_arg(item, graph, params, tokens) for item in value)
        return b"S" + struct.pack(">Q", len(parts)) + b"".join(parts)
    if kind is Routes:
        return b"R" + encode_routes(value, graph, params)
    return encode(value)


def encode_routes(routes: Routes, graph: Any, params: Mapping[str, Any]) -> bytes:
    """A router's routes by key and Merkle hash; the routes are not in the graph, so a scratch
    graph hashes them (the same hashes they get when chosen)."""
    from .graph import Graph

    scratch = Graph()
    scratch.params = dict(params)
    lazies = [route for route in routes.routes.values() if type(route) is LazyResult]
    scratch.add(lazies)
    parts = sorted(
        encode(key) + (b"r" + scratch.node_of(route).hash.encode() if type(route) is LazyResult else encode(route))
        for key, route in routes.routes.items()
    )
    return struct.pack(">Q", len(parts)) + b"".join(parts)


def substitute(value: Any, results: list[Any], graph: Any, params: Mapping[str, Any]) -> Any:
    """``value`` with every lazy result replaced by its computed value and every Param by its value."""
    kind = type(value)
    if kind is LazyResult:
        return results[graph.index_of[id(value)]]
    if kind is Param:
        return params[value.name]
    if kind is tuple or kind is list:
        return kind(substitute(item, results, graph, params) for item in value)
    if kind is dict:
        return {
            substitute(key, results, graph, params): substitute(item, results, graph, params)
            for key, item in value.items()
        }
    if kind is set or kind is frozenset:
        return kind(substitute(item, results, graph, params) for item in value)
    return value


def shape_result(shape: Any, results: list[Any], graph: Any) -> Any:
    """The target's structure (lazy result, list, tuple, dict) filled with computed values."""
    kind = type(shape)
    if kind is LazyResult:
        return results[graph.index_of[id(shape)]]
    if kind is list or kind is tuple:
        return kind(shape_result(item, results, graph) for item in shape)
    if kind is dict:
        return {key: shape_result(item, results, graph) for key, item in shape.items()}
    return shape
