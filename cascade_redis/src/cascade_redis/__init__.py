"""Redis state and cache backends for Cascade.

Installed, it serves ``redis://``, ``rediss://`` (TLS) and ``redis+unix://`` URIs, Sentinel
(``redis+sentinel://h1:26379,h2:26379/SERVICE``) and Cluster (``redis+cluster://h1:7000,h2:7001``)
URIs, and their TLS forms (``rediss+sentinel://``, ``rediss+cluster://``)::

    import cascade_core as cs

    cs.run(target, state_backend="redis://localhost:6379/0", cache_backend="redis://localhost:6379/0?ttl=86400")

The key layout, every URI option and what a failover can lose are in docs/redis.md.
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
