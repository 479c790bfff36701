"""The providers of cascade-core's own schemes, registered through the same
``cascade.backends`` entry points as any third-party plugin (see cascade_core/pyproject.toml)."""

from __future__ import annotations

from typing import Any

from .._plugins.events import hookimpl  # type: ignore[attr-defined]  # imports pluggy: fine, a provider loads on use


class MemoryProvider:
    """``memory://[name]?ttl=SECONDS&max_runs=N``: a process-wide store called ``name``."""

    @hookimpl
    def cascade_state_backend(self, uri: Any) -> Any:
        from .._uri import positive_float, positive_int
        from .memory import named_state_store

        # ttl is the cache's option; accepted here so that one URI serves both.
        options = uri.parse_options({"ttl": positive_float, "max_runs": positive_int})
        return named_state_store(uri.host or "", options.get("max_runs"))

    @hookimpl
    def cascade_cache_backend(self, uri: Any) -> Any:
        from .._uri import positive_float, positive_int
        from .memory import named_cache

        options = uri.parse_options({"ttl": positive_float, "max_runs": positive_int})
        return named_cache(uri.host or "", options.get("ttl"))

    @hookimpl
    def cascade_blob_store(self, uri: Any) -> Any:
        from .._uri import positive_float, positive_int
        from ..blobs.memory import named_blob_store

        uri.parse_options({"ttl": positive_float, "max_runs": positive_int})  # one URI serves all three
        return named_blob_store(uri.host or "")


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
