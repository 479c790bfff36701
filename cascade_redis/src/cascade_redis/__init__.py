"""Redis state and cache backends for Cascade.

Installed, it serves ``redis://``, ``rediss://`` (TLS) and ``redis+unix://`` URIs::

    import cascade_core as cs

    cs.run(target, state_backend="redis://localhost:6379/0", cache_backend="redis://localhost:6379/0?ttl=86400")

The key layout and every URI option are in docs/redis.md.
"""

from __future__ import annotations

from typing import Any

from .cache import RedisCacheBackend
from .options import RedisOptions
from .state import RedisStateBackend, RedisStateStore

__all__ = ["RedisCacheBackend", "RedisOptions", "RedisStateBackend", "RedisStateStore", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("cascade-redis")
        except PackageNotFoundError:  # running from a source tree
            return "0+unknown"
    raise AttributeError(f"module 'cascade_redis' has no attribute {name!r}")
