"""Turn what users pass as ``state_backend=`` / ``cache_backend=`` / ``executor=`` into objects.

Accepted for each: nothing (``memory://``, or ``threads://`` for the executor), a URI
string, a ``BackendURI``, and for tests and advanced use a state-backend factory or
instance, a cache-backend instance, or an executor object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._errors import DefinitionError, InvalidURIError
from .._store.protocols import CACHE_METHODS, STATE_METHODS, missing_methods
from .._uri import BackendURI

DEFAULT_URI = "memory://"
DEFAULT_EXECUTOR = "threads://"
_DEFAULT_EXECUTOR_URI = BackendURI.parse(DEFAULT_EXECUTOR)  # parsed once: every run without executor= uses it


@dataclass
class StateSpec:
    """How to get the state backend of a run."""

    factory: Callable[[str], Any] | None  # None: a bound instance was given
    instance: Any = None
    label: str = DEFAULT_URI
    owned: bool = False  # opened from a URI here, so closed after the run

    def open(self, run_id: str) -> Any:
        if self.instance is not None:
            return self.instance
        assert self.factory is not None
        return self.factory(run_id)

    def close(self) -> None:
        if self.owned and self.factory is not None:
            close = getattr(self.factory, "close", None)
            if callable(close):
                close()


@dataclass
class CacheSpec:
    backend: Any
    label: str = DEFAULT_URI
    owned: bool = False

    def close(self) -> None:
        if self.owned:
            self.backend.close()


def _as_uri(value: Any) -> BackendURI | None:
    """The URI a backend argument names (None names ``memory://``), or None for an object."""
    if value is None:
        value = DEFAULT_URI
    if isinstance(value, BackendURI):
        return value
    return BackendURI.parse(value) if isinstance(value, str) else None


def resolve_state(value: Any) -> StateSpec:
    """Resolve a ``state_backend=`` argument."""
    uri = _as_uri(value)
    if uri is not None:
        from .registry import registry

        return StateSpec(registry.state_factory(uri), label=str(uri), owned=True)
    if not missing_methods(value, STATE_METHODS) and isinstance(getattr(value, "run_id", None), str):
        return StateSpec(None, instance=value, label=repr(value))
    if callable(value) and not isinstance(value, type):
        return StateSpec(value, label=getattr(value, "__name__", type(value).__name__))
    missing = ", ".join(missing_methods(value, STATE_METHODS)) or "run_id"
    raise DefinitionError(
        f"state_backend must be a URI such as 'sqlite:///cascade.db', a factory run_id -> StateBackend, "
        f"or a StateBackend; got {type(value).__name__} (missing {missing}){_misplaced(value, 'state_backend')}"
    )


def resolve_cache(value: Any) -> CacheSpec:
    """Resolve a ``cache_backend=`` argument."""
    uri = _as_uri(value)
    if uri is not None:
        from .registry import registry

        return CacheSpec(registry.cache_backend(uri), label=str(uri), owned=True)
    missing = missing_methods(value, CACHE_METHODS)
    if missing:
        raise DefinitionError(
            f"cache_backend must be a URI such as 'sqlite:///cascade.db' or a CacheBackend; "
            f"got {type(value).__name__} (missing {', '.join(missing)}){_misplaced(value, 'cache_backend')}"
        )
    return CacheSpec(value, label=repr(value))


@dataclass
class ExecutorSpec:
    """The executor of a run."""

    executor: Any
    label: str = DEFAULT_EXECUTOR
    owned: bool = False  # made from a URI here, so closed after the run

    def close(self) -> None:
        if self.owned:
            self.executor.close()


def resolve_executor(value: Any, max_workers: int | None = None) -> ExecutorSpec:
    """Resolve an ``executor=`` argument together with the ``max_workers=`` shorthand.

    Nothing means ``threads://``, and ``max_workers=N`` alone ``threads://?max_workers=N``.
    With a URI that has no ``max_workers`` option, N is added to it as one; an executor that
    takes no such option must already run N calls at once. With a URI that sets its own
    ``max_workers``, or an executor object, N must be the executor's own count: give the
    number once. Anything else is a DefinitionError.
    """
    workers = check_workers(max_workers)
    if value is None:
        value = _DEFAULT_EXECUTOR_URI
    uri = value if isinstance(value, BackendURI) else BackendURI.parse(value) if isinstance(value, str) else None
    if uri is not None:
        return _executor_from_uri(uri, workers)
    from .executor import missing_executor_methods

    if isinstance(value, type):
        raise DefinitionError(
            f"executor must be an executor object, not the class {value.__name__}: pass an instance, "
            f"such as {value.__name__}()"
        )
    missing = missing_executor_methods(value)
    if missing:
        raise DefinitionError(
            f"executor must be a URI such as 'threads://?max_workers=8' or 'inline://', or an object with "
            f"submit, close and max_workers; got {type(value).__name__} (missing {', '.join(missing)})"
            f"{_misplaced(value, 'executor')}"
        )
    if workers is not None and value.max_workers != workers:
        raise DefinitionError(
            f"max_workers={workers} conflicts with the executor {value!r}, which runs {value.max_workers} "
            "at once: give the number once, on the executor"
        )
    return ExecutorSpec(value, label=repr(value))


def _executor_from_uri(uri: BackendURI, workers: int | None) -> ExecutorSpec:
    from .registry import registry

    if workers is not None and "max_workers" not in uri.options:
        widened = uri.replace(query=(*uri.query, ("max_workers", str(workers))))
        try:
            return ExecutorSpec(registry.executor(widened), label=str(widened), owned=True)
        except InvalidURIError as exc:
            if exc.key != "max_workers":
                raise
        # The executor takes no max_workers option: fine if it already runs that many at once.
        executor = registry.executor(uri)
        if executor.max_workers != workers:
            executor.close()
            raise DefinitionError(
                f"max_workers={workers} does not apply to the executor {uri}, which takes no max_workers "
                f"option and runs {executor.max_workers} at once: drop max_workers, or choose an executor "
                f"that takes it, such as threads://?max_workers={workers}"
            )
        return ExecutorSpec(executor, label=str(uri), owned=True)
    executor = registry.executor(uri)
    if workers is not None and executor.max_workers != workers:
        executor.close()
        raise DefinitionError(
            f"max_workers={workers} conflicts with the executor {uri}, which runs {executor.max_workers} "
            "at once: give the number once, in the URI or as max_workers"
        )
    return ExecutorSpec(executor, label=str(uri), owned=True)


def check_workers(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DefinitionError(f"max_workers must be a whole number >= 1, got {value!r}")
    return value


def _misplaced(value: Any, argument: str) -> str:
    """A hint when ``value`` is an object of another kind than ``argument`` takes, else ''."""
    from .executor import missing_executor_methods

    if argument != "executor" and not isinstance(value, type) and not missing_executor_methods(value):
        return f": {type(value).__name__} is an executor, pass it as executor="
    if argument != "state_backend" and not missing_methods(value, STATE_METHODS):
        return f": {type(value).__name__} is a state backend, pass it as state_backend="
    if argument != "cache_backend" and not missing_methods(value, CACHE_METHODS):
        return f": {type(value).__name__} is a cache backend, pass it as cache_backend="
    return ""


def check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 200 or not run_id.isprintable() or " " in run_id:
        raise DefinitionError(
            f"run_id must be a non-empty printable string without spaces (at most 200 chars), got {run_id!r}"
        )
    return run_id


def check_lease_ttl(value: Any) -> float:
    import math

    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0.5 <= value <= 86400
    ):
        raise DefinitionError(f"lease_ttl must be a number of seconds from 0.5 to 86400, got {value!r}")
    return float(value)


def new_run_id() -> str:
    """A fresh, sortable, unique run id such as ``20261127-214233-3f9a1c2b``."""
    import os
    import time

    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + os.urandom(4).hex()
