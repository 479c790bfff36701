"""A call's inputs as values: its arguments with upstream results and params filled in, from
an argument template built once per node; the target's shape filled with computed values.

A call's upstreams are referred to by node index (``node.data_deps``), never by ``id()``, so
a node pickled into another process binds the same way. (Its inputs as bytes are
``encoding``'s.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .task import LazyResult, Param


class _Upstream:
    """In a template: the result of node ``index``."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _Gathered:
    """In a template: a list or tuple of upstream results only (a fan-in), by node index."""

    __slots__ = ("kind", "indexes")

    def __init__(self, kind: type, indexes: list[int]) -> None:
        self.kind = kind
        self.indexes = indexes


class _Rebuilt:
    """In a template: a container holding upstreams or params at some depth, rebuilt per call."""

    __slots__ = ("kind", "items")

    def __init__(self, kind: type, items: Any) -> None:
        self.kind = kind
        self.items = items  # item templates; for a dict, (key, value) template pairs


Template = tuple[tuple, dict[str, Any]]  # the positional and keyword argument templates


def call_arguments(node: Any, results: list[Any], params: Mapping[str, Any]) -> tuple[tuple, dict]:
    """The positional and keyword arguments of ``node`` (a ``graph.Node``) with every upstream
    result (``results[index]``) and param filled in."""
    lazy = node.lazy
    if not lazy.deps and not lazy.has_params:
        return lazy.args, lazy.kwargs
    if lazy.args is lazy.deps:  # only lazy results (a chain link, a diamond): in argument order
        return tuple(map(results.__getitem__, node.data_deps)), lazy.kwargs
    template = node.arguments
    if template is None:
        template = node.arguments = argument_template(lazy, node.data_deps)
    args_template, kwargs_template = template
    args = tuple(
        [
            results[item.index] if type(item) is _Upstream else _fill(item, results, params)
            for item in args_template
        ]
    )
    kwargs = {name: _fill(item, results, params) for name, item in kwargs_template.items()}
    return args, kwargs


def argument_template(lazy: LazyResult, data_deps: tuple[int, ...]) -> Template:
    """What :func:`call_arguments` fills: ``lazy``'s arguments with each lazy result replaced by
    its node index (``data_deps`` are the indexes of ``lazy.deps``, position for position)."""
    index_of = dict(zip(lazy.deps, data_deps))  # by the lazy results themselves (identity)
    return (
        tuple([_template(arg, index_of) for arg in lazy.args]),
        {name: _template(value, index_of) for name, value in lazy.kwargs.items()},
    )


def _template(value: Any, index_of: Mapping[LazyResult, int]) -> Any:
    kind = type(value)
    if kind is LazyResult:
        return _Upstream(index_of[value])
    if kind is tuple or kind is list:
        if value and all(type(item) is LazyResult for item in value):
            return _Gathered(kind, [index_of[item] for item in value])
        return _Rebuilt(kind, [_template(item, index_of) for item in value])
    if kind is dict:
        return _Rebuilt(dict, [(_template(key, index_of), _template(item, index_of)) for key, item in value.items()])
    if kind is set or kind is frozenset:
        return _Rebuilt(kind, [_template(item, index_of) for item in value])
    return value  # a scalar, a Param, or an object passed as it is


def _fill(item: Any, results: list[Any], params: Mapping[str, Any]) -> Any:
    kind = type(item)
    if kind is _Upstream:
        return results[item.index]
    if kind is _Gathered:
        return item.kind(map(results.__getitem__, item.indexes))
    if kind is _Rebuilt:
        if item.kind is dict:
            return {_fill(key, results, params): _fill(value, results, params) for key, value in item.items}
        return item.kind([_fill(part, results, params) for part in item.items])
    if kind is Param:
        return params[item.name]
    return item


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
