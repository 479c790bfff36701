"""The shared cache in redis: one string key per entry, ``<prefix>:cache:<cache key>``.

Reads are one MGET, writes one pipeline of ``SET ... PX``, deletes one DEL; ``clear``
walks the keyspace with SCAN (never KEYS, which blocks the server) and UNLINKs in batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, cast

from cascade_core.plugin import BackendURI, CacheBackendBase, LeaseTableMixin, checked_ttl

from .connection import RedisConnection
from .layout import cache_key, cache_pattern, lock_key
from .leases import RedisLeases
from .options import RedisOptions

if TYPE_CHECKING:
    import redis

SCAN_COUNT: Final = 1000
UNLINK_BATCH: Final = 1000


class RedisCacheBackend(LeaseTableMixin, CacheBackendBase):
    """Cache entries shared by every run and machine that uses the same redis and prefix.

    >>> cache = RedisCacheBackend.from_uri("redis://localhost:6379/0?ttl=3600")
    >>> cache.set_many({"k": b"payload"})   # doctest: +SKIP
    >>> cache.get_many(["k", "missing"])    # doctest: +SKIP
    {'k': b'payload'}
    """

    trusted_store: Final = False  # networked: the engine warns about unsigned pickles

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        self.uri = options.uri
        self.serializer = options.serializer
        self.max_payload_bytes = options.max_value_size
        self.max_payload_option = "max_value_size"  # the URI option that raises max_payload_bytes
        self.default_ttl = options.ttl
        self._prefix = options.prefix
        self._connection = RedisConnection(options)
        prefix = options.prefix
        self._locks = RedisLeases(self._connection, lambda key: lock_key(prefix, key))

    def _lease_table(self) -> RedisLeases:
        return self._locks

    @classmethod
    def from_uri(cls, uri: BackendURI | str) -> RedisCacheBackend:
        return cls(RedisOptions.from_uri(uri))

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        # Bytes names: redis-py passes them through instead of encoding each one.
        head = cache_key(self._prefix, "").encode()
        names = [head + key.encode() for key in wanted]
        values = cast("list[bytes | None]", self._connection.run(lambda client: client.mget(names)))
        return {key: value for key, value in zip(wanted, values, strict=True) if value is not None}

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        if not items:
            return
        self.options.check_sizes(items, "the cache entry {key}")
        ttl = self.default_ttl if ttl is None else checked_ttl(ttl)
        if ttl is not None and ttl <= 0:
            # Expired on arrival, as with the memory backend: just make sure no older value survives.
            self.delete_many(items)
            return
        px = None if ttl is None else max(1, math.ceil(ttl * 1000))
        prefix = self._prefix

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(cache_key(prefix, key), value, px=px)
            # raise_on_error would quote the failed command, payload bytes included, in the error.
            for reply in pipe.execute(raise_on_error=False):
                if isinstance(reply, Exception):
                    raise reply

        self._connection.run(write)

    def delete_many(self, keys: Iterable[str]) -> int:
        names = [cache_key(self._prefix, key) for key in dict.fromkeys(keys)]
        if not names:
            return 0
        return int(self._connection.run(lambda client: client.delete(*names)))

    def clear(self, prefix: str = "") -> int:
        """Delete every entry whose cache key starts with ``prefix``; return how many."""
        pattern = cache_pattern(self._prefix, prefix)

        def clear(client: redis.Redis) -> int:
            removed = 0
            batch: list[bytes] = []
            for name in client.scan_iter(match=pattern, count=SCAN_COUNT):
                batch.append(name)
                if len(batch) >= UNLINK_BATCH:
                    removed += client.unlink(*batch)
                    batch = []
            if batch:
                removed += client.unlink(*batch)
            return removed

        return self._connection.run(clear)

    def close(self) -> None:
        self._connection.close()

    def __repr__(self) -> str:
        return f"RedisCacheBackend({str(self.uri)!r})"
