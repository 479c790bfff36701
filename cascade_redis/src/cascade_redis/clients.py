"""The redis-py clients behind one URI: one server, or the master of a Sentinel service.

Both give one ``redis.Redis`` for every key; the cluster's per-slot routing is in cluster.py,
with the same methods (``client_for``, ``groups``, ``masters``, ``slot_groups``, ``describe``),
so that RedisConnection need not know which deployment it talks to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .options import RedisOptions
from .topology import SENTINEL

if TYPE_CHECKING:
    import redis


class SingleMaster:
    """One client serves every key: a server of its own, or the master a Sentinel names."""

    def __init__(self, options: RedisOptions) -> None:
        import redis

        self.options = options
        self.sentinel: Any = None
        if options.kind == SENTINEL:
            from redis.sentinel import Sentinel

            self.sentinel = Sentinel(
                list(options.nodes), sentinel_kwargs=_sentinel_kwargs(options), **options.node_kwargs()
            )
            assert options.service is not None
            self.client: redis.Redis = self.sentinel.master_for(options.service)
        else:
            self.client = redis.Redis(connection_pool=redis.ConnectionPool(**options.pool_kwargs()))

    def client_for(self, key: bytes | str) -> redis.Redis:
        return self.client

    def groups(self, names: Sequence[bytes | str], by_slot: bool = False) -> list[tuple[redis.Redis, list[list[int]]]]:
        """(client, groups of indexes into ``names``) per master: here one master, one group."""
        return [(self.client, [list(range(len(names)))])] if names else []

    def slot_groups(self, names: Sequence[bytes | str], indexes: list[int]) -> list[list[int]]:
        """``indexes`` split by cluster slot: one server has no slots to respect."""
        return [indexes] if indexes else []

    def masters(self) -> list[redis.Redis]:
        return [self.client]

    def invalidate(self) -> None:
        """After a lost connection: a Sentinel-managed pool asks the sentinels again on reconnect."""
        if self.sentinel is not None:
            self.client.connection_pool.disconnect(inuse_connections=False)

    def disconnect(self) -> None:
        self.client.connection_pool.disconnect()
        if self.sentinel is not None:
            for sentinel in self.sentinel.sentinels:
                sentinel.connection_pool.disconnect()

    def describe(self) -> str:
        """The server's version and address; for Sentinel, the master it names and its live replicas."""
        info = self.client.info("server")
        version = info.get("redis_version", "?")
        if self.sentinel is None:
            if self.options.unix_socket_path is not None:
                return f"redis {version} on socket {self.options.unix_socket_path}, db {self.options.db}"
            return f"redis {version} at {self.options.host}:{self.options.port}, db {self.options.db}"
        service = self.options.service
        host, port = self.sentinel.discover_master(service)
        replicas = len(self.sentinel.discover_slaves(service))
        return (
            f"Sentinel service {service!r}: master {host}:{port} (redis {version}), {replicas} live "
            f"replica{'s' if replicas != 1 else ''}, db {self.options.db}"
        )


def _sentinel_kwargs(options: RedisOptions) -> dict[str, Any]:
    """How to reach the sentinels themselves: their own user and password, the same timeouts and TLS."""
    return options.socket_kwargs(options.sentinel_username, options.sentinel_password)
