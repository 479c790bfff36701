"""The providers of cascade-core's own schemes, registered through the same
``cascade.backends`` entry points as any third-party plugin (see cascade_core/pyproject.toml)."""

from __future__ import annotations

from typing import Any

from .._events import hookimpl  # type: ignore[attr-defined]  # imports pluggy: fine, a provider loads on use


class MemoryProvider:
    """``memory://[name]?ttl=SECONDS``: a process-wide store called ``name``."""

    @hookimpl
    def cascade_state_backend(self, uri: Any) -> Any:
        from .._uri import positive_float
        from .memory import named_state_store

        uri.parse_options({"ttl": positive_float})  # ttl is the cache's; accepted so one URI serves both
        return named_state_store(uri.host or "")

    @hookimpl
    def cascade_cache_backend(self, uri: Any) -> Any:
        from .._uri import positive_float
        from .memory import named_cache

        options = uri.parse_options({"ttl": positive_float})
        return named_cache(uri.host or "", options.get("ttl"))


class SqliteProvider:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``: one file, WAL mode."""

    @hookimpl
    def cascade_state_backend(self, uri: Any) -> Any:
        from .sqlite import SqliteStateStore

        return SqliteStateStore.from_uri(uri)

    @hookimpl
    def cascade_cache_backend(self, uri: Any) -> Any:
        from .sqlite import SqliteCacheBackend

        return SqliteCacheBackend.from_uri(uri)


memory = MemoryProvider()
sqlite = SqliteProvider()
