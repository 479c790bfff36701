"""Tasks, lazy results and params: what user code touches to build a graph."""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from .._errors import DefinitionError
from .._uri import MAX_SECONDS
from .binding import Binder
from .cache_policy import CachePolicy, resolve_policy

R = TypeVar("R")

MAX_RETRY_DELAY = 24 * 3600  # seconds, also the longest wait between two attempts
MAX_RETRY_BACKOFF = 100

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


def _module_name(fn: Any) -> str:
    """The function's module; for a script run as ``__main__``, the script's file name.

    So a task defined in ``wordcount.py`` is ``wordcount.fetch`` whether the script is run
    directly or loaded by ``cascade run``: its node ids and cache keys stay the same.
    """
    module = getattr(fn, "__module__", None) or "?"
    if module == "__main__":
        import sys
        from pathlib import Path

        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file:
            return Path(main_file).stem
    return module


def _lookup(module: str, qualname: str) -> Any:
    """``module.qualname`` if that module is imported already, else None (nothing is imported)."""
    import sys

    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found


def _task_named(module: str, qualname: str) -> Task:
    """The task ``module.qualname``, importing its module (how a pickled task is found again)."""
    import importlib

    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, Task):
        raise DefinitionError(f"{module}.{qualname} is not a task here: its module defines it differently")
    return found


class Task(Generic[R]):
    """A plain function made lazy: calling it returns a :class:`LazyResult`."""

    def __init__(
        self,
        fn: Callable[..., R],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_delay: float = 0.0,
        retry_backoff: float = 2.0,
        cache: bool | CachePolicy = False,
        cache_ttl: float | None = None,
        version: str | None = None,
        cache_lock: bool = True,
    ) -> None:
        if not callable(fn) or isinstance(fn, (Task, LazyResult)):
            raise DefinitionError(f"@task needs a function, got {type(fn).__name__} {fn!r}")
        label = name or f"{_module_name(fn)}.{getattr(fn, '__qualname__', repr(fn))}"
        if name is not None and (not isinstance(name, str) or not name or ":" in name):
            raise DefinitionError(f"task name {name!r} must be a non-empty string without ':'")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise DefinitionError(f"task {label!r}: retries must be a whole number >= 0, got {retries!r}")
        for option, value, maximum, unit in (
            ("retry_delay", retry_delay, MAX_RETRY_DELAY, " seconds (a day)"),
            ("retry_backoff", retry_backoff, MAX_RETRY_BACKOFF, ""),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= maximum:
                raise DefinitionError(
                    f"task {label!r}: {option} must be a number from 0 to {maximum}{unit}, got {value!r}"
                )
        if cache_ttl is not None and (
            not isinstance(cache_ttl, (int, float)) or isinstance(cache_ttl, bool) or not 0 < cache_ttl <= MAX_SECONDS
        ):
            raise DefinitionError(
                f"task {label!r}: cache_ttl must be a number of seconds greater than 0 and at most {MAX_SECONDS} "
                f"(10 years), got {cache_ttl!r}"
            )
        if version is not None and not isinstance(version, str):
            raise DefinitionError(f"task {label!r}: version must be a string, got {version!r}")
        self.fn = fn
        self.name = label
        self.retries = retries
        self.retry_delay = float(retry_delay)
        self.retry_backoff = float(retry_backoff)
        self.cache_policy = resolve_policy(cache, label)
        self.key_prefix = f"{label}:"  # every cache key of the task starts with it
        self.cache_ttl = None if cache_ttl is None else float(cache_ttl)
        self.version = version
        self.cache_lock = cache_lock
        self.is_async = inspect.iscoroutinefunction(fn)
        self._code_version: str | None = None
        self._binder = Binder(fn, label)
        # A call with exactly this many positional arguments and no keyword needs no binding (-1: always bind).
        self._arity = self._binder.arity
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickled by reference when its module holds it under its name, so that a worker process
        imports the same task; by value otherwise (cloudpickle then sends closures and tasks of
        scripts, as Dask does; plain pickle refuses them)."""
        module, qualname = getattr(self, "__module__", None), getattr(self, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str) and _lookup(module, qualname) is self:
            return (_task_named, (module, qualname))
        return super().__reduce_ex__(protocol)

    def retry_wait(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt + 1``: ``retry_delay * retry_backoff**attempt``, at most a day."""
        if not self.retry_delay:
            return 0.0
        try:
            return float(min(self.retry_delay * self.retry_backoff**attempt, MAX_RETRY_DELAY))
        except OverflowError:
            return float(MAX_RETRY_DELAY)

    @property
    def code_version(self) -> str:
        """The explicit ``version=``, else a hash of the function's source (or bytecode)."""
        if self.version is not None:
            return self.version
        if self._code_version is None:
            from .hashing import digest

            try:
                source = inspect.getsource(self.fn).encode()
            except (OSError, TypeError):
                code = getattr(self.fn, "__code__", None)
                source = code.co_code + repr(code.co_consts).encode() if code is not None else self.name.encode()
            self._code_version = digest(source)
        return self._code_version

    def __call__(self, *args: Any, **kwargs: Any) -> LazyResult[R]:
        if kwargs or len(args) != self._arity:
            args, kwargs = self._binder.bind(args, kwargs)
        return LazyResult(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<task {self.name}>"


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

    __slots__ = ("task", "args", "kwargs", "deps", "ordering", "has_params", "seq", "__weakref__")

    def __init__(self, task: Task[R], args: tuple, kwargs: dict[str, Any]) -> None:
        self.seq = next(_creation_counter)  # creation order is a topological order of data dependencies
        self.task = task
        self.args = args
        self.kwargs = kwargs
        deps: list[LazyResult] = []
        has_params = False
        # The common case: lazy results and scalars, no container to search (the order of
        # the walk below: the positional arguments, then the keyword ones).
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

    def __repr__(self) -> str:
        return f"<lazy {self.task.name}>"

    def __bool__(self) -> bool:
        raise DefinitionError(
            f"the result of {self.task.name!r} is not known while the graph is built: "
            "branch inside a task instead of on a lazy result"
        )


_TASK_OPTIONS = frozenset(
    {"name", "retries", "retry_delay", "retry_backoff", "cache", "cache_ttl", "version", "cache_lock"}
)


@overload
def task(fn: Callable[..., R], /) -> Task[R]: ...
@overload
def task(
    *,
    name: str | None = ...,
    retries: int = ...,
    retry_delay: float = ...,
    retry_backoff: float = ...,
    cache: bool | CachePolicy = ...,
    cache_ttl: float | None = ...,
    version: str | None = ...,
    cache_lock: bool = ...,
) -> Callable[[Callable[..., R]], Task[R]]: ...


def task(fn: Any = None, /, **options: Any) -> Any:
    """Make a function a task.

    >>> @task
    ... def add(a, b):
    ...     return a + b
    >>> @task(retries=2, cache=True, cache_ttl=3600)
    ... def fetch(url): ...
    """
    unknown = set(options) - _TASK_OPTIONS
    if unknown:
        raise DefinitionError(
            f"unknown @task option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_TASK_OPTIONS))}"
        )
    if fn is None:
        return lambda function: Task(function, **options)
    if options:
        raise DefinitionError("use @task or @task(option=...), not @task(function, option=...)")
    return Task(fn)
