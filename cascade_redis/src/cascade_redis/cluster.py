"""A Redis Cluster's slot map: which master serves each of the 16384 slots, one client per master.

cascade-redis routes every command itself rather than through redis-py's ``RedisCluster``: a
run's keys share one hash tag, so each state call goes straight to the master of that slot on
a plain client; cache and lock batches are grouped per master and sent as one pipeline each,
so a batch costs one round trip per master whatever its size. The map is read with
``CLUSTER SLOTS`` from any seed or known node, on first use and again after any call that met
a redirection (``MOVED``, ``ASK``), ``CLUSTERDOWN``, ``TRYAGAIN`` or a lost connection.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from .options import RedisOptions

if TYPE_CHECKING:
    import redis

SLOTS: Final = 16384
MEMO: Final = 4096  # slots of this many str keys are remembered (a run's few keys, called once per task)

_memo: dict[str, int] = {}


def key_slot(key: bytes | str) -> int:
    """The cluster slot of ``key`` (CRC16 of its hash tag, or of the whole key)."""
    if isinstance(key, bytes):
        return _crc_slot(key)
    slot = _memo.get(key)
    if slot is None:
        if len(_memo) >= MEMO:
            _memo.clear()
        slot = _memo[key] = _crc_slot(key.encode())
    return slot


def _crc_slot(key: bytes) -> int:
    from redis.crc import key_slot as crc_slot

    globals()["_crc_slot"] = crc_slot  # imported once, on first use
    return crc_slot(key)


class ClusterMap:
    """The masters of one cluster and the slots each serves; thread-safe, refreshed on demand."""

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        self._kwargs = options.node_kwargs()
        self._kwargs.pop("db", None)  # a cluster has db 0 only, and refuses SELECT
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, int], redis.Redis] = {}
        self._slots: list[redis.Redis | None] | None = None  # None: to be (re)read
        self._addresses: list[tuple[str, int]] = []  # of the masters, in slot order

    # -- the map -------------------------------------------------------------------

    def _map(self) -> list[redis.Redis | None]:
        slots = self._slots
        if slots is None:
            with self._lock:
                slots = self._slots
                if slots is None:
                    slots = self._slots = self._read()
        return slots

    def _read(self) -> list[redis.Redis | None]:
        """Ask the known masters, then the seeds, for CLUSTER SLOTS; the first answer wins."""
        import redis

        candidates = list(dict.fromkeys([*self._addresses, *self.options.nodes]))
        error: Exception | None = None
        for address in candidates:
            try:
                ranges = self._client(address).execute_command("CLUSTER SLOTS")
            except redis.exceptions.AuthenticationError:
                raise  # the same password goes to every node
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                error = exc  # that node is down: ask the next one
                continue
            return self._build(ranges, address)
        assert error is not None
        raise error

    def _build(self, ranges: Sequence[Any], asked: tuple[str, int]) -> list[redis.Redis | None]:
        slots: list[redis.Redis | None] = [None] * SLOTS
        masters: dict[tuple[str, int], None] = {}
        for start, end, master, *_replicas in ranges:
            host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
            # An empty or '?' endpoint means "the node you asked" (CLUSTER SLOTS in redis 7).
            address = (asked[0] if host in ("", "?") else host, int(master[1]))
            masters[address] = None
            client = self._client(address)
            for slot in range(int(start), int(end) + 1):
                slots[slot] = client
        for address in [known for known in self._clients if known not in masters]:
            if address not in self.options.nodes:  # a node that left (or is a replica now)
                self._clients.pop(address).connection_pool.disconnect()
        self._addresses = list(masters)
        return slots

    def _client(self, address: tuple[str, int]) -> redis.Redis:
        client = self._clients.get(address)
        if client is None:
            import redis

            client = self._clients[address] = redis.Redis(host=address[0], port=address[1], **self._kwargs)
        return client

    def invalidate(self) -> None:
        """Read the map again before the next call (after a redirection or a lost node)."""
        self._slots = None

    # -- routing -------------------------------------------------------------------

    def client_for(self, key: bytes | str) -> redis.Redis:
        """The client of the master that serves ``key``'s slot."""
        return self._served(self._map(), key_slot(key))

    @staticmethod
    def _served(slots: list[redis.Redis | None], slot: int) -> redis.Redis:
        client = slots[slot]
        if client is None:
            import redis

            raise redis.exceptions.ClusterDownError(f"no master serves slot {slot}")
        return client

    def groups(self, names: Sequence[bytes | str], by_slot: bool = False) -> list[tuple[redis.Redis, list[list[int]]]]:
        """(client, groups of indexes into ``names``) per master that serves some of them: one group
        per master, or with ``by_slot`` one per slot (what a multi-key command or a script may take)."""
        from redis.crc import key_slot as crc_slot

        slots = self._map()
        by_client: dict[int, tuple[redis.Redis, dict[int, list[int]]]] = {}
        for index, name in enumerate(names):
            slot = crc_slot(name.encode() if isinstance(name, str) else name)  # not memoized: cache keys vary
            client = self._served(slots, slot)
            entry = by_client.get(id(client))
            if entry is None:
                entry = by_client[id(client)] = (client, {})
            entry[1].setdefault(slot if by_slot else 0, []).append(index)
        return [(client, list(groups.values())) for client, groups in by_client.values()]

    def slot_groups(self, names: Sequence[bytes | str], indexes: list[int]) -> list[list[int]]:
        """``indexes`` (into ``names``) split by slot: a multi-key command or script takes one slot."""
        by_slot: dict[int, list[int]] = {}
        for index in indexes:
            by_slot.setdefault(key_slot(names[index]), []).append(index)
        return list(by_slot.values())

    def masters(self) -> list[redis.Redis]:
        slots = self._map()
        return list({id(client): client for client in slots if client is not None}.values())

    # -- the rest ------------------------------------------------------------------

    def describe(self) -> str:
        """How many masters serve how many slots (read afresh)."""
        self.invalidate()
        slots = self._map()
        covered = sum(client is not None for client in slots)
        masters = ", ".join(f"{host}:{port}" for host, port in self._addresses)
        count = len(self._addresses)
        text = (
            f"Redis Cluster: {count} master{'s' if count != 1 else ''} ({masters}), {covered} of {SLOTS} slots covered"
        )
        return text if covered == SLOTS else text + ": keys in the other slots cannot be stored"

    def disconnect(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.connection_pool.disconnect()
            self._slots = None

    @property
    def client(self) -> redis.Redis:
        """A client of some master (for commands that name no key)."""
        return self.masters()[0]
