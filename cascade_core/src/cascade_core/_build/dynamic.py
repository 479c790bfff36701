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

from collections.abc import Iterable, Mapping
from typing import Any

from .._errors import DefinitionError
from .task import LazyResult, Param, Task


class Unmapped:
    """A value passed whole to every call of a ``task.map``: ``f.map(xs, unmapped(config))``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"unmapped({self.value!r})"


def unmapped(value: Any) -> Unmapped:
    """Pass ``value`` (a plain value or a lazy result) whole to every mapped call."""
    return Unmapped(value)


def _collect(*values: Any) -> list[Any]:
    return list(values)


def _expanded_by_the_run(*_: Any) -> Any:  # pragma: no cover - the scheduler never calls it
    raise RuntimeError("a map or router node is expanded by the run, not called")


_COLLECT = Task(_collect, name="cascade.collect", version="1")
_COLLECT_CACHED = Task(_collect, name="cascade.collect", version="1", cache=True)


class MapTask(Task):
    """The node of a map whose inputs are known only at run time; its value is the list of its calls' values."""

    kind = "map"

    def __init__(self, mapped: Task) -> None:
        super().__init__(
            _expanded_by_the_run,
            name=f"{mapped.name}.map",
            cache=mapped.cache_policy or False,
            cache_ttl=mapped.cache_ttl,
            cache_lock=mapped.cache_lock,
        )
        self.mapped = mapped

    @property
    def code_version(self) -> str:
        return f"map:{self.mapped.code_version}"

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_map_task_of, (self.mapped,))


def _map_task_of(mapped: Task) -> MapTask:
    found = getattr(mapped, "_map_task", None)
    if found is None:
        found = mapped._map_task = MapTask(mapped)  # type: ignore[attr-defined]
    return found


def map_call(task: Task, args: tuple, kwargs: dict[str, Any]) -> LazyResult:
    """``task.map(*args, **kwargs)``: one call per element of the (zipped) mapped arguments."""
    if not args and not kwargs:
        raise DefinitionError(f"{task.name}.map() needs at least one iterable to map over")
    names = [f"argument {i + 1}" for i in range(len(args))] + [f"argument {name!r}" for name in kwargs]
    values = [*args, *kwargs.values()]
    mapped = [not isinstance(value, Unmapped) for value in values]
    if not any(mapped):
        raise DefinitionError(f"{task.name}.map(): every argument is unmapped(); map over at least one iterable")
    plain = [value.value if isinstance(value, Unmapped) else value for value in values]
    late = False
    for position, (name, value, is_mapped) in enumerate(zip(names, plain, mapped)):
        if not is_mapped:
            continue
        if type(value) is LazyResult:
            late = late or value.task not in (_COLLECT, _COLLECT_CACHED)
        elif isinstance(value, Param):
            late = True
        else:
            plain[position] = elements(value, f"{task.name}.map() {name}", DefinitionError)
    if late:
        positional = tuple(plain[: len(args)])
        keywords = dict(zip(kwargs, plain[len(args) :]))
        return LazyResult(_map_task_of(task), (positional, keywords, tuple(mapped)), {})
    # Every mapped argument is known now (a collect node's calls count as known): expand here.
    columns = [
        list(value.args) if type(value) is LazyResult and is_mapped else value
        for value, is_mapped in zip(plain, mapped)
    ]
    rows = zip_calls(task.name, columns, mapped, len(args), list(kwargs), DefinitionError)
    calls = [task(*call_args, **call_kwargs) for call_args, call_kwargs in rows]
    return (_COLLECT_CACHED if task.cache_policy is not None else _COLLECT)(*calls)


def elements(value: Any, what: str, error: type[Exception]) -> list[Any]:
    """The elements of a mapped argument, as a list; a dict, a string, bytes or a non-iterable is refused."""
    if isinstance(value, Mapping):
        raise error(f"{what} is a dict: map over list(d.items()), list(d) or list(d.values()) instead")
    if isinstance(value, (str, bytes, bytearray)):
        raise error(f"{what} is a {type(value).__name__}: map over a list of them (or list(text) for its characters)")
    if not isinstance(value, Iterable):
        raise error(f"{what} is a {type(value).__name__}, which cannot be iterated: map over a list, tuple or range")
    return list(value)  # a generator is read once, here


def zip_calls(
    name: str, columns: list[Any], mapped: list[bool], positional: int, keywords: list[str], error: type[Exception]
) -> list[tuple[tuple, dict[str, Any]]]:
    """The arguments of each mapped call: mapped columns zipped, unmapped values repeated."""
    lengths = {len(column) for column, is_mapped in zip(columns, mapped) if is_mapped}
    if len(lengths) > 1:
        shown = ", ".join(str(len(column)) for column, is_mapped in zip(columns, mapped) if is_mapped)
        raise error(f"{name}.map() got iterables of different lengths ({shown}): zip needs them equal")
    count = lengths.pop()
    calls = []
    for i in range(count):
        row = [column[i] if is_mapped else column for column, is_mapped in zip(columns, mapped)]
        calls.append((tuple(row[:positional]), dict(zip(keywords, row[positional:]))))
    return calls


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
    lazy = LazyResult(_ROUTER, (selector,), {"routes": Routes(dict(routes))})
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
