"""The graph's dynamic parts: ``task.map``, ``cs.unmapped``, ``cs.Router`` and graphs returned by tasks.

A map over plain iterables is expanded here, while the graph is built: one call per
element, gathered by a ``cascade.collect`` node whose value is their list. A map over a
lazy result (or a Param) is one node of a :class:`MapTask`; the run expands it when its
upstreams are done (``_run/expansion.py``). A router is one node whose only upstream is its
selector; its routes enter its identity but join the graph only when chosen. A task whose
value holds lazy results at its top level returns a graph: the run adds it and the task's
value becomes the graph's (docs/concepts.md, "Dynamic workflows").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import DefinitionError
from .lazy import Unmapped, unmapped  # noqa: F401  (public as cascade_core.unmapped)
from .task import LazyResult, Param, Task, elements, zip_calls  # noqa: F401  (the run's expansion reads them here)


class Routes:
    """A router's routes: they are not its upstreams (only the chosen one runs), but they are part of its identity."""

    __slots__ = ("routes",)

    def __init__(self, routes: dict[Any, Any]) -> None:
        self.routes = routes

    def reachable(self) -> list[LazyResult]:
        """Every lazy result the routes' graphs hold (each once)."""
        found: dict[int, LazyResult] = {}
        pending = [route for route in self.routes.values() if type(route) is LazyResult]
        while pending:
            lazy = pending.pop()
            if id(lazy) not in found:
                found[id(lazy)] = lazy
                pending.extend(lazy.deps + lazy.ordering)
        return list(found.values())


def _route(selector: Any, *, routes: Routes) -> Any:  # pragma: no cover - chosen by the run
    return routes.routes[selector]


class RouterTask(Task):
    kind = "router"


_ROUTER = RouterTask(_route, name="cascade.Router", version="1")


def Router(selector: Any, routes: Mapping[Any, Any]) -> LazyResult:  # noqa: N802 - a value that reads as a class
    """A lazy value chosen at run time: ``routes[value of selector]``. Only the chosen route runs.

    >>> kind = detect(path)
    >>> parsed = Router(kind, {"csv": parse_csv(path), "json": parse_json(path)})
    """
    if not isinstance(selector, (LazyResult, Param)):
        raise DefinitionError(
            f"Router's selector must be a lazy result (a task call) or a Param, got {type(selector).__name__}"
        )
    if not isinstance(routes, Mapping) or not routes:
        raise DefinitionError("Router needs a non-empty dict of routes: {selector value: lazy result}")
    lazy: LazyResult[Any] = LazyResult(_ROUTER, (selector,), {"routes": Routes(dict(routes))})
    # The Params of the routes' graphs are declared with the router's graph, so a route chosen later has them.
    lazy.has_params = lazy.has_params or any(route.has_params for route in lazy.kwargs["routes"].reachable())
    return lazy


def is_dynamic(task: Task) -> bool:
    return task.kind is not None


def returns_graph(value: Any) -> bool:
    """Whether a task's value is a graph: a lazy result, or a list, tuple or dict holding one at its top level."""
    kind = type(value)
    if kind is LazyResult:
        return True
    if kind is list or kind is tuple:
        return LazyResult in set(map(type, value))
    if kind is dict:
        return LazyResult in set(map(type, value.values()))
    return False


def graph_roots(shape: Any) -> list[LazyResult]:
    """The lazy results of a returned graph's shape (top level, or one level inside a list/tuple/dict)."""
    if type(shape) is LazyResult:
        return [shape]
    items = shape.values() if type(shape) is dict else shape
    return list(dict.fromkeys(item for item in items if type(item) is LazyResult))
