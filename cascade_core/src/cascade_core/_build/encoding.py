"""A call's inputs as bytes: what node ids and cache keys digest (the resume contract).

``hash()`` is salted per process and ``pickle`` output of sets varies with it, so values are
encoded by type first (sets and dict keys sorted by their own encodings) and only objects
Cascade does not know fall back to pickle. A call's inputs are its positional arguments as one
tuple, then its keyword arguments as one dict (when it has any), then ``b"A"`` and the hashes
of its ``.after()`` nodes (when it has any). An upstream enters as ``b"r"`` + how it is known:
its node hash in a node id, its cache key (or its value's digest) in a cache key. A param
enters as ``b"P"`` + its value's encoding. Stored ids and keys depend on every byte: they are
pinned by tests (test_keys_and_ids, test_merkle_keys, test_warm_keys_fast_paths).

:func:`encode_inputs` is the definition. The fast paths give the same bytes for the common
shapes, several times faster, and decline (None) for any other; tests/core/test_encoding.py
compares each with the definition on every argument shape:

- :func:`build_inputs`: a node's inputs while its id is computed, with the ``head`` and
  ``tail`` around its upstreams' refs when it has that form;
- :func:`key_inputs`: a cache key's inputs from the upstreams' key refs, by node index
  (``head`` + refs + ``tail``, or a walk of the common argument shapes).
"""

from __future__ import annotations

import operator
import pickle
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .dynamic import Routes
from .lazy import condition_of
from .task import LazyResult, Param


class UnhashableInput(TypeError):
    """A value that cannot be encoded for hashing (raised inside; callers name the task)."""


_pack = struct.pack
_is = operator.is_  # C-level: map(_is, ...) makes no Python call per item


def encode(value: Any) -> bytes:
    """Deterministic bytes for a value. Raises UnhashableInput."""
    kind = type(value)
    # Fast paths for the common scalars.
    if kind is str:
        raw = value.encode("utf-8", "surrogatepass")
        return b"s" + _pack(">Q", len(raw)) + raw
    if kind is int:
        return b"i%d;" % value
    if value is None:
        return b"N"
    if kind is bool:
        return b"T" if value else b"F"
    if kind is float:
        return b"f" + _pack(">d", value)
    if kind is bytes:
        return b"b" + _pack(">Q", len(value)) + value
    if kind in (list, tuple):
        return (b"l" if kind is list else b"t") + _pack(">Q", len(value)) + b"".join(map(encode, value))
    if kind is dict:
        items = (
            sorted(encode(k) + encode(v) for k, v in value.items())
            if _mixed_keys(value)
            else [encode(k) + encode(v) for k, v in sorted(value.items(), key=_sort_key)]
        )
        return b"d" + _pack(">Q", len(items)) + b"".join(items)
    if kind in (set, frozenset):
        members = sorted(map(encode, value))
        return b"S" + _pack(">Q", len(members)) + b"".join(members)
    token = getattr(value, "__cascade_token__", None)
    if token is not None:
        return b"c" + encode(token())
    try:
        raw = pickle.dumps(value, protocol=4)
    except Exception as exc:  # pickle raises many types for unpicklable objects
        raise UnhashableInput(f"{type(value).__name__} cannot be pickled for hashing: {exc}") from None
    return b"p" + _pack(">Q", len(raw)) + raw


def _mixed_keys(mapping: dict) -> bool:
    key_types = {type(k) for k in mapping}
    return len(key_types) != 1 or not key_types <= {str, int, float, bytes}


def _sort_key(item: tuple[Any, Any]) -> Any:
    return item[0]


# -- the definition ------------------------------------------------------------------


def encode_inputs(lazy: LazyResult, graph: Any, params: Mapping[str, Any], tokens: Any = None) -> bytes:
    """Deterministic bytes for a call's inputs: upstreams by node hash (or by ``tokens[index]``),
    params by value. ``graph``: a ``graph.Graph`` (its ``nodes`` and ``index_of``)."""
    encoded = encode_arg(lazy.args, graph, params, tokens)
    if lazy.kwargs:
        encoded += encode_arg(lazy.kwargs, graph, params, tokens)
    if lazy.ordering:
        encoded += b"A" + b"".join(graph.node_of(dep).hash.encode() for dep in lazy.ordering)
    condition = condition_of(lazy)
    if type(condition) is Param:  # a lazy run_if condition is in the ordering
        encoded += b"C" + encode(params[condition.name])
    return encoded


def encode_arg(value: Any, graph: Any, params: Mapping[str, Any], tokens: Any) -> bytes:
    """One argument (any depth) of :func:`encode_inputs`."""
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
        return (b"t" if kind is tuple else b"l") + _pack(">Q", len(parts)) + b"".join(parts)
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
        return b"d" + _pack(">Q", len(parts)) + b"".join(parts)
    if kind is set or kind is frozenset:
        parts = sorted(encode_arg(item, graph, params, tokens) for item in value)
        return b"S" + _pack(">Q", len(parts)) + b"".join(parts)
    if kind is Routes:
        return b"R" + _encode_routes(value, type(graph), params)
    return encode(value)


def _encode_routes(routes: Routes, graph_type: Any, params: Mapping[str, Any]) -> bytes:
    """A router's routes by key and Merkle hash. The routes are not in the graph (only the chosen
    one joins it), so a scratch graph hashes them: the same hashes they get when chosen."""
    scratch = graph_type()  # a graph.Graph, by the type of the one being built (no import of graph here)
    scratch.params = dict(params)
    scratch.add([route for route in routes.routes.values() if type(route) is LazyResult])
    parts = sorted(
        encode(key) + (b"r" + scratch.node_of(route).hash.encode() if type(route) is LazyResult else encode(route))
        for key, route in routes.routes.items()
    )
    return _pack(">Q", len(parts)) + b"".join(parts)


# -- fast paths ------------------------------------------------------------------------

_COUNTS: dict[int, bytes] = {}  # b"t" + the packed argument count, by count (a call's arity: few)


def build_inputs(node: Any, ref_of: Callable[[int], bytes], graph: Any) -> bytes:
    """The inputs of ``node`` (a ``graph.Node`` being built): ``encode_inputs(node.lazy, graph,
    graph.params)``, given ``ref_of(i) = b"r" + hash of node i`` for its upstreams.

    When they are ``head`` + the refs of ``node.data_deps`` + ``tail`` (only lazy results, one
    list of them, or one lazy result among scalars in a cached call), sets ``node.head`` and
    ``node.tail``: a cache key of the node then needs no walk of its arguments (:func:`key_inputs`).
    """
    lazy = node.lazy
    if lazy.ordering or lazy.has_params:
        return encode_inputs(lazy, graph, graph.params)
    args, deps = lazy.args, lazy.deps
    if lazy.kwargs:  # keyword(-only) arguments: the positional ones as the definition has them, then these
        return encode_arg(args, graph, graph.params, None) + _keywords(lazy.kwargs, ref_of, graph)
    if not deps:  # a leaf: scalars (or containers of them) only
        parts = [_COUNTS.get(len(args)) or _count(len(args))]
        for arg in args:
            kind = type(arg)
            if kind is int:
                parts.append(b"i%d;" % arg)  # = encode(arg)
            elif kind in _CONTAINERS:
                parts.append(encode_arg(arg, graph, graph.params, None))
            else:
                parts.append(encode(arg))
        return b"".join(parts)
    if deps is args or (len(args) == len(deps) and all(map(_is, args, deps))):  # only lazy results
        head = node.head = _COUNTS.get(len(args)) or _count(len(args))
        return head + b"".join(map(ref_of, node.data_deps))
    if len(args) == 1 and type(args[0]) is list and len(args[0]) == len(deps) and all(map(_is, args[0], deps)):
        # A fan-in: one list of lazy results only.
        head = node.head = b"t" + _pack(">Q", 1) + b"l" + _pack(">Q", len(deps))
        return head + b"".join(map(ref_of, node.data_deps))
    # The common case: the definition's bytes without its calls per argument.
    index_of = graph.index_of
    parts = [_COUNTS.get(len(args)) or _count(len(args))]
    at = 0  # where the (last) upstream passed as an argument is
    for arg in args:
        kind = type(arg)
        if kind is LazyResult:
            at = len(parts)
            parts.append(ref_of(index_of[id(arg)]))
        elif kind is int:
            parts.append(b"i%d;" % arg)  # = encode(arg)
        elif (kind is list or kind is tuple) and all(type(item) is LazyResult for item in arg):
            # A fan-in: thousands of upstreams in one list.
            parts.append((b"l" if kind is list else b"t") + _pack(">Q", len(arg)))
            parts.append(b"".join(map(ref_of, map(index_of.__getitem__, map(id, arg)))))
        elif kind in _CONTAINERS:
            parts.append(encode_arg(arg, graph, graph.params, None))
        else:
            parts.append(encode(arg))
    if at and len(deps) == 1 and node.task.cache_policy is not None:  # one upstream among scalars
        head = node.head = parts[0] if at == 1 else b"".join(parts[:at])
        tail = node.tail = b"".join(parts[at + 1 :])
        return head + parts[at] + tail
    return b"".join(parts)


def _keywords(kwargs: dict[str, Any], ref_of: Callable[[int], bytes], graph: Any) -> bytes:
    """``encode_arg(kwargs, graph, graph.params, None)`` of a call without params: its keys are
    strings, its lazy results enter by ``ref_of``."""
    index_of = graph.index_of
    parts = sorted(
        [
            encode(key)
            + (
                ref_of(index_of[id(value)])
                if type(value) is LazyResult
                else b"i%d;" % value
                if type(value) is int
                else encode_arg(value, graph, graph.params, None)
            )
            for key, value in kwargs.items()
        ]
    )
    return b"d" + _pack(">Q", len(parts)) + b"".join(parts)


def _count(n: int) -> bytes:
    count = _COUNTS[n] = b"t" + _pack(">Q", n)
    return count


_CONTAINERS = (list, tuple, dict, set, frozenset)


def key_inputs(node: Any, refs: list[bytes | None], index_of: Mapping[int, int]) -> bytes | None:
    """``encode_inputs(node.lazy, graph, params, tokens)`` given ``refs[i] = b"r" + tokens[i]``
    (None for an upstream without a token yet), for a node with upstreams: ``node.head`` + refs +
    ``node.tail`` (:func:`build_inputs`), or the common call (positional lazy results, fan-in lists
    of them, scalars). None for any other call, or when an upstream has no token: then the caller
    takes the definition, once every upstream has one.
    """
    head = node.head
    if head is not None:
        deps = node.data_deps
        if len(deps) == 1:  # a chain link, or one upstream among scalars: no list
            joined = refs[deps[0]]
            if joined is None:
                return None
        else:
            items = [*map(refs.__getitem__, deps)]
            if None in items:
                return None
            joined = b"".join(items)  # type: ignore[arg-type]
        return head + joined + node.tail
    lazy = node.lazy
    if lazy.kwargs or lazy.ordering or lazy.has_params:
        return None
    args = lazy.args
    parts = [_COUNTS.get(len(args)) or _count(len(args))]
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
        return None  # the definition names the argument
    return b"".join(parts)
