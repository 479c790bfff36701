"""The ``cascade.backends`` provider for ``redis://``, ``rediss://``, ``redis+unix://`` and the
Sentinel and Cluster schemes (``redis+sentinel://``, ``rediss+sentinel://``, ``redis+cluster://``,
``rediss+cluster://``).

cascade-core imports this module the first time one of those schemes is used; redis-py
itself is imported only when a backend first connects.
"""

from __future__ import annotations

from typing import Any

from cascade_core.plugin import hookimpl  # imports pluggy: fine, a provider loads on use


class RedisProvider:
    """Makes state factories and cache backends from redis URIs."""

    @hookimpl
    def cascade_state_backend(self, uri: Any) -> Any:
        from .state import RedisStateStore

        return RedisStateStore.from_uri(uri)

    @hookimpl
    def cascade_cache_backend(self, uri: Any) -> Any:
        from .cache import RedisCacheBackend

        return RedisCacheBackend.from_uri(uri)

    def __repr__(self) -> str:
        return "RedisProvider()"


provider = RedisProvider()
