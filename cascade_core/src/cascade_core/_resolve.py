"""Turn what users pass as ``state_backend=`` / ``cache_backend=`` into backends.

Accepted for each: nothing (``memory://``), a URI string, a ``BackendURI``, and for tests
and advanced use a state-backend factory or instance, or a cache-backend instance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import DefinitionError
from ._protocols import CACHE_METHODS, STATE_METHODS, missing_methods
from ._uri import BackendURI

DEFAULT_URI = "memory://"


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
        from ._registry import registry

        return StateSpec(registry.state_factory(uri), label=str(uri), owned=True)
    if not missing_methods(value, STATE_METHODS) and isinstance(getattr(value, "run_id", None), str):
        return StateSpec(None, instance=value, label=repr(value))
    if callable(value) and not isinstance(value, type):
        return StateSpec(value, label=getattr(value, "__name__", type(value).__name__))
    missing = ", ".join(missing_methods(value, STATE_METHODS)) or "run_id"
    raise DefinitionError(
        f"state_backend must be a URI such as 'sqlite:///cascade.db', a factory run_id -> StateBackend, "
        f"or a StateBackend; got {type(value).__name__} (missing {missing})"
    )


def resolve_cache(value: Any) -> CacheSpec:
    """Resolve a ``cache_backend=`` argument."""
    uri = _as_uri(value)
    if uri is not None:
        from ._registry import registry

        return CacheSpec(registry.cache_backend(uri), label=str(uri), owned=True)
    missing = missing_methods(value, CACHE_METHODS)
    if missing:
        raise DefinitionError(
            f"cache_backend must be a URI such as 'sqlite:///cascade.db' or a CacheBackend; "
            f"got {type(value).__name__} (missing {', '.join(missing)})"
        )
    return CacheSpec(value, label=repr(value))
