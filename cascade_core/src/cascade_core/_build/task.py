"""Tasks: plain functions made lazy, their options, and the @task decorator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, overload

from .._errors import DefinitionError
from .._uri import MAX_SECONDS
from .binding import Binder
from .cache_policy import CachePolicy, resolve_policy
from .lazy import MISSING, LazyResult, Param, Unmapped  # noqa: F401  (re-exported: the graph layer imports them from here)
from .task_options import checked_limits, checked_resources, checked_timeout

R = TypeVar("R")

MAX_RETRY_DELAY = 24 * 3600  # seconds, also the longest wait between two attempts
MAX_RETRY_BACKOFF = 100


def _module_name(fn: Any) -> str:
    """The function's module; for a script run as ``__main__``, the script's file name.

    So a task defined in ``wordcount.py`` is ``wordcount.fetch`` whether the script is run
    directly or loaded by ``cascade run``: its node ids and cache keys stay the same.
    """
    from .code_version import module_label  # (imported when a task is made, not with the package)

    return module_label(getattr(fn, "__module__", None) or "?")


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

    kind: str | None = None  # "map" or "router" for the engine's own dynamic nodes (_build/dynamic.py)

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
        timeout: float | None = None,
        resources: dict[str, float] | None = None,
        limits: list[str] | None = None,
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
        self.timeout = checked_timeout(label, timeout)  # seconds per attempt (docs/concepts.md, "Limits")
        self.resources = checked_resources(label, resources)
        self.limits = checked_limits(label, limits)
        self.is_async = inspect.iscoroutinefunction(fn)
        self._code_version: str | None = None
        self._code: Any = None  # its CodeVersion, when first asked
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
        """The explicit ``version=``, else the digest of its code and the user code it calls
        (normalised: comments, docstrings and layout do not count; _build/code_version)."""
        if self.version is not None:
            return self.version
        if self._code_version is None:
            self._code_version = self.code.digest
        return self._code_version

    @property
    def code(self) -> Any:
        """What its code version covers (a ``CodeVersion``: digest, units, unresolved names),
        computed once per process, whether or not ``version=`` overrides it."""
        if self._code is None:
            from .code_version import follow

            self._code = follow(self.fn, self.name)
        return self._code

    def __call__(self, *args: Any, **kwargs: Any) -> LazyResult[R]:
        if kwargs or len(args) != self._arity:
            args, kwargs = self._binder.bind(args, kwargs)
        return LazyResult(self, args, kwargs)

    def map(self, *iterables: Any, **kwargs: Any) -> LazyResult[list[R]]:
        """One call per element: ``f.map(xs)`` is ``[f(x) for x in xs]`` as one lazy result.

        Each argument is a plain iterable, or a lazy result (or Param) whose value is one, expanded
        when the run knows it; several are zipped; ``cascade_core.unmapped(x)`` passes ``x`` whole.
        """
        return map_call(self, iterables, kwargs)

    def __repr__(self) -> str:
        return f"<task {self.name}>"


# -- task.map (_build/dynamic.py has the rest of the dynamic parts) ----------------------


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


_TASK_OPTIONS = frozenset(
    {"name", "retries", "retry_delay", "retry_backoff", "cache", "cache_ttl", "version", "cache_lock"}
    | {"timeout", "resources", "limits"}
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
    timeout: float | None = ...,
    resources: dict[str, float] | None = ...,
    limits: list[str] | None = ...,
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
