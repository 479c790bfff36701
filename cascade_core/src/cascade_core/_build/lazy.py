"""Lazy results and params: the nodes of a graph as user code makes them, before any id exists."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .._errors import DefinitionError

R = TypeVar("R")

_CONTAINERS = (list, tuple, dict, set, frozenset)
_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})  # never hold a lazy result or a Param


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Param:
    """A named input of a graph, filled from ``run(params=...)``.

    >>> n = Param("n", default=3, type=int)
    """

    __slots__ = ("name", "default", "type")

    def __init__(self, name: str, default: Any = MISSING, type: Callable[[Any], Any] | None = None) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise DefinitionError(f"param name {name!r} is not a valid identifier: use letters, digits and '_'")
        if type is not None and not callable(type):
            raise DefinitionError(f"param {name!r}: type= must be a type or a callable, got {type!r}")
        self.name = name
        self.default = default
        self.type = type

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def __repr__(self) -> str:
        default = "" if self.required else f", default={self.default!r}"
        kind = "" if self.type is None else f", type={getattr(self.type, '__name__', self.type)}"
        return f"Param({self.name!r}{default}{kind})"


_creation_counter = itertools.count()


def _holds_lazy(container: Any) -> bool:
    """Whether a container (of any type) holds a lazy result or a Param, at any depth."""
    pending = [container]
    while pending:
        value = pending.pop()
        if isinstance(value, (LazyResult, Param)):
            return True
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, _CONTAINERS):
            pending.extend(value)
    return False


class LazyResult(Generic[R]):
    """The not-yet-computed result of one task call: a node of the graph."""

    __slots__ = ("task", "args", "kwargs", "deps", "ordering", "has_params", "seq", "condition", "__weakref__")

    def __init__(self, task: Any, args: tuple, kwargs: dict[str, Any]) -> None:  # task: a _build.task.Task
        self.seq = next(_creation_counter)  # creation order is a topological order of data dependencies
        self.task = task
        self.args = args
        self.kwargs = kwargs
        deps: list[LazyResult] = []
        has_params = False
        # The common case: lazy results and scalars, no container to search (the order of the
        # walk below: the positional arguments, then the keyword ones).
        for value in (*args, *kwargs.values()) if kwargs else args:
            kind = type(value)
            if kind is LazyResult:
                deps.append(value)
            elif kind in _SCALARS:
                continue
            elif kind is Param:
                has_params = True
            elif kind in _CONTAINERS or isinstance(value, _CONTAINERS):
                break
        else:
            # Only lazy results (a chain, a diamond): the args tuple is the deps, no second tuple.
            self.deps: tuple[LazyResult, ...] = args if len(deps) == len(args) and not kwargs else tuple(deps)
            self.ordering: tuple[LazyResult, ...] = ()
            self.has_params = has_params
            return
        deps.clear()
        has_params = False
        pending: list[Any] = [*args, *kwargs.values()] if kwargs else list(args)
        while pending:
            value = pending.pop()
            kind = type(value)
            if kind is LazyResult:
                deps.append(value)
            elif kind is Param:
                has_params = True
            elif kind in _CONTAINERS:
                pending.extend(value.values() if kind is dict else value)
                if kind is dict:
                    pending.extend(value.keys())
            elif isinstance(value, _CONTAINERS) and _holds_lazy(value):
                raise DefinitionError(
                    f"{task.name}(...) got a {kind.__name__} holding lazy results: only plain lists, tuples, "
                    f"dicts and sets are searched for dependencies; pass a plain one (for example list(...) or "
                    "dict(...)) and rebuild the container inside the task"
                )
        deps.reverse()
        self.deps = tuple(deps)
        self.ordering = ()
        self.has_params = has_params

    def after(self, *others: LazyResult) -> LazyResult[R]:
        """Run this node only after ``others`` have finished, without passing their data."""
        for other in others:
            if not isinstance(other, LazyResult):
                raise DefinitionError(
                    f".after() on {self.task.name!r} needs lazy results (task calls), got {type(other).__name__}"
                )
        self.ordering = self.ordering + others
        return self

    def run_if(self, condition: LazyResult | Param) -> LazyResult[R]:
        """Run this node only when ``condition`` (a lazy result or a Param) is true at run time.

        Otherwise it is recorded ``skipped``, and so is everything that needs its value.
        """
        if condition_of(self) is not None:
            raise DefinitionError(f".run_if() on {self.task.name!r} is set already: combine the conditions in a task")
        if isinstance(condition, LazyResult):
            self.ordering = self.ordering + (condition,)
        elif isinstance(condition, Param):
            self.has_params = True
        else:
            raise DefinitionError(
                f".run_if() on {self.task.name!r} needs a lazy result or a Param, got {type(condition).__name__}: "
                "for a condition known now, use a plain if"
            )
        self.condition = condition
        return self

    def __repr__(self) -> str:
        return f"<lazy {self.task.name}>"

    def __bool__(self) -> bool:
        raise DefinitionError(
            f"the result of {self.task.name!r} is not known while the graph is built: "
            "branch inside a task instead of on a lazy result"
        )


def condition_of(lazy: LazyResult) -> LazyResult | Param | None:
    """A lazy result's ``run_if`` condition, or None. The slot is set only by run_if (most lazy
    results never pay for it), and a condition also puts the node on a slow path of the build:
    a lazy one is in its ordering, a Param makes it take params."""
    return getattr(lazy, "condition", None)


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
