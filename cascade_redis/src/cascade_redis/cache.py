"""The shared cache in redis: one string key per entry, ``<prefix>:cache:<cache key>``.

On one server (or a Sentinel master) reads are one MGET (or one EXISTS when the engine only
needs to know that entries exist: ``count_entries``), writes one pipeline of
``SET ... PX``, deletes one DEL. On a cluster the entries spread over every slot, so each
batch is one pipeline per master: an MGET or DEL per slot, a SET per entry. ``clear`` walks
the keyspace of every master with SCAN (never KEYS, which blocks the server) and UNLINKs in
batches of one slot. ``iter_entries`` (for ``cascade blobs gc``) walks it the same way and
reads each batch of names with per-slot MGETs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from cascade_core.plugin import BackendURI, CacheBackendBase, LeaseTableMixin, checked_ttl

from .connection import RedisStoreBase
from .layout import cache_key, cache_pattern, lock_key
from .leases import RedisLeases
from .options import RedisOptions

if TYPE_CHECKING:
    import redis

SCAN_COUNT: Final = 1000
UNLINK_BATCH: Final = 1000


class RedisCacheBackend(RedisStoreBase, LeaseTableMixin, CacheBackendBase):
    """Cache entries shared by every run and machine that uses the same redis and prefix.

    >>> cache = RedisCacheBackend.from_uri("redis://localhost:6379/0?ttl=3600")
    >>> cache.set_many({"k": b"payload"})   # doctest: +SKIP
    >>> cache.get_many(["k", "missing"])    # doctest: +SKIP
    {'k': b'payload'}
    """

    def __init__(self, options: RedisOptions) -> None:
        super().__init__(options)
        self.max_payload_option = "max_value_size"  # the URI option that raises max_payload_bytes
        self.default_ttl = options.ttl
        self._prefix = options.prefix
        prefix = options.prefix
        self._locks = RedisLeases(self.connection, lambda key: lock_key(prefix, key))

    def _lease_table(self) -> RedisLeases:
        return self._locks

    @classmethod
    def from_uri(cls, uri: BackendURI | str) -> RedisCacheBackend:
        return cls(RedisOptions.from_uri(uri))

    def _names(self, keys: list[str]) -> list[bytes]:
        # Bytes names: redis-py passes them through instead of encoding each one.
        head = cache_key(self._prefix, "").encode()
        return [head + key.encode() for key in keys]

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        values = self.connection.mget(self._names(wanted))
        return {key: value for key, value in zip(wanted, values, strict=True) if value is not None}

    def count_entries(self, keys: Iterable[str]) -> int:
        """How many of ``keys`` have live entries, unread: one ``EXISTS`` (one per slot on a cluster)."""
        names = self._names(list(dict.fromkeys(keys)))

        def queue(pipe: Any, groups: list[list[int]]) -> None:
            for group in groups:
                pipe.exists(*[names[index] for index in group])

        return sum(sum(replies) for _, replies in self.connection.per_master(names, queue, by_slot=True))

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
        names = [cache_key(self._prefix, key) for key in items]
        values = list(items.values())

        def queue(pipe: Any, groups: list[list[int]]) -> None:
            for index in groups[0]:
                pipe.set(names[index], values[index], px=px)

        self.connection.per_master(names, queue, write=True)

    def delete_many(self, keys: Iterable[str]) -> int:
        names = [cache_key(self._prefix, key) for key in dict.fromkeys(keys)]

        def queue(pipe: Any, groups: list[list[int]]) -> None:
            for group in groups:
                pipe.delete(*[names[index] for index in group])

        return sum(sum(replies) for _, replies in self.connection.per_master(names, queue, by_slot=True))

    def clear(self, prefix: str = "") -> int:
        """Delete every entry whose cache key starts with ``prefix``; return how many."""
        pattern = cache_pattern(self._prefix, prefix)
        connection = self.connection

        def unlink(client: redis.Redis, batch: list[bytes]) -> int:
            pipe = client.pipeline(transaction=False)
            for group in connection.slot_groups(batch, list(range(len(batch)))):
                pipe.unlink(*[batch[index] for index in group])
            return sum(connection.execute(pipe))

        def clear(client: redis.Redis) -> int:
            removed = 0
            batch: list[bytes] = []
            for name in client.scan_iter(match=pattern, count=SCAN_COUNT):
                batch.append(name)
                if len(batch) >= UNLINK_BATCH:
                    removed += unlink(client, batch)
                    batch = []
            return removed + (unlink(client, batch) if batch else 0)

        return sum(connection.each_master(clear))

    def iter_entries(self) -> Iterator[tuple[str, bytes]]:
        """Every live entry as (key, payload): what ``cascade blobs gc`` reads.

        Walks each master's keyspace with ``SCAN MATCH <prefix>:cache:* COUNT 1000`` (never KEYS)
        and reads each batch of names with one pipeline of per-slot MGETs, routed by the current
        slot map: one SCAN and one MGET round trip per 1000 entries, memory for one batch only.
        An entry that expires between the two is skipped; any redis error ends the walk with a
        Cascade error (never a short listing, from which gc would delete live blobs).
        """
        connection = self.connection
        pattern = cache_pattern(self._prefix, "")
        head = len(cache_key(self._prefix, "").encode())

        def page(client: redis.Redis, cursor: int) -> tuple[int, list[Any]]:
            return connection.retrying(lambda: client.scan(cursor, match=pattern, count=SCAN_COUNT))

        for client in connection.retrying(lambda: connection.deployment().masters()):
            cursor = 0
            while True:
                cursor, names = page(client, cursor)
                if names:
                    yield from self.get_many(name[head:].decode() for name in names).items()
                if not cursor:
                    break
