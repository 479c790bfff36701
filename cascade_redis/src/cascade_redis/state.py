"""Run state in redis: four hashes per run under one hash tag (see layout.py, docs/redis.md).

Every write is one pipelined round trip that also stamps ``updated`` (and ``created``
once) and refreshes the TTL of all four keys, so a run's keys expire together. The hash tag
puts them in one cluster slot, so on a cluster every call goes to the one master of that slot.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, cast

from cascade_core.plugin import BackendError, BackendURI, LeaseTableMixin, LimitStoreMixin, StateBackendBase

from .connection import RedisStoreBase
from .layout import lease_key, meta_pattern, run_keys
from .leases import RedisLeases
from .limits import RedisLimits
from .options import RedisOptions
from .topology import CLUSTER

# put_results refreshes `updated` and the keys' TTLs at most this often (seconds).
REFRESH_INTERVAL: Final = 1.0

if TYPE_CHECKING:
    import redis

# HMGET takes every id in one command; only a huge batch is split (into one pipeline).
HMGET_CHUNK: Final = 50_000
SCAN_COUNT: Final = 1000


def now() -> str:
    """The timestamp stored in ``created`` and ``updated``: ISO 8601, UTC, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class RedisStateStore(LimitStoreMixin, RedisStoreBase):
    """All runs under one URI: call it with a run id to get that run's backend.

    Owns the connection pool that its backends share; ``close()`` disconnects it.
    Also lists and deletes runs (``RunCatalog``) and keeps named limits (``LimitStore``, limits.py).
    """

    def __init__(self, options: RedisOptions) -> None:
        super().__init__(options)
        self._limits = RedisLimits(self.connection, options.prefix)  # LimitStore (limits.py)

    def _limit_table(self) -> RedisLimits:
        return self._limits

    @classmethod
    def from_uri(cls, uri: BackendURI | str) -> RedisStateStore:
        return cls(RedisOptions.from_uri(uri))

    def __call__(self, run_id: str) -> RedisStateBackend:
        if self.options.kind == CLUSTER and (not run_id or run_id.startswith("}")):
            # `{}` or `{}...}` is no hash tag: each key would hash whole, to a slot of its own.
            raise BackendError(
                f"run id {run_id!r} would spread its keys over several cluster slots on {self.uri}: use a run id "
                "that is not empty and does not start with '}'"
            )
        return RedisStateBackend(run_id, self)

    def list_runs(self) -> list[dict[str, str]]:
        """Every stored run's metadata, with ``run_id`` and ``results`` (how many are stored)."""
        prefix = self.options.prefix
        pattern, head, tail = meta_pattern(prefix)

        def scan(client: redis.Redis) -> list[bytes]:
            return list(client.scan_iter(match=pattern, count=SCAN_COUNT))

        found: dict[str, None] = {}  # SCAN may return a key twice
        for names in self.connection.each_master(scan):
            for raw in names:
                key = raw.decode()
                if key.startswith(head) and key.endswith(tail):
                    found[key[len(head) : -len(tail)]] = None
        run_ids = list(found)
        metas = [run_keys(prefix, run_id)[2] for run_id in run_ids]

        def queue(pipe: Any, groups: list[list[int]]) -> None:
            for index in groups[0]:
                results, _, meta, _ = run_keys(prefix, run_ids[index])
                pipe.hgetall(meta)
                pipe.hlen(results)

        runs = []
        for groups, replies in self.connection.per_master(metas, queue):
            for index, meta_raw, count in zip(groups[0], replies[::2], replies[1::2], strict=True):
                if meta_raw:  # else expired between SCAN and HGETALL
                    runs.append({**_decode_hash(meta_raw), "run_id": run_ids[index], "results": str(count)})
        return sorted(runs, key=lambda run: (run.get("created", ""), run["run_id"]))

    def delete_run(self, run_id: str) -> bool:
        """Delete the run's keys; True when any existed."""
        keys = run_keys(self.options.prefix, run_id)
        return self.connection.on(keys[0], lambda client: client.delete(*keys)) > 0


class RedisStateBackend(LeaseTableMixin, StateBackendBase):
    """The state of one run in redis.

    >>> store = RedisStateStore.from_uri("redis://localhost:6379/0")
    >>> backend = store("run-1")
    >>> backend.put_results({"node": b"payload"})      # doctest: +SKIP
    >>> backend.get_results(["node", "other"])         # doctest: +SKIP
    {'node': b'payload'}
    """

    trusted_store: Final = False

    def __init__(self, run_id: str, store: RedisStateStore) -> None:
        self.run_id = run_id
        self.store = store
        self.serializer = store.serializer
        self.max_payload_bytes = store.max_payload_bytes
        self.max_payload_option = "max_value_size"  # the URI option that raises max_payload_bytes
        self._connection = store.connection
        self._ttl = store.options.state_ttl
        self._results, self._skipped, self._meta, self._tasks = run_keys(store.options.prefix, run_id)
        self._refreshed = float("-inf")  # monotonic time of the last write that stamped meta and TTLs
        prefix = store.options.prefix
        self._leases = RedisLeases(self._connection, lambda node_id: lease_key(prefix, run_id, node_id))

    # -- writes: one round trip each ---------------------------------------------

    def _write(self, key: str, mapping: Mapping[str, Any], info: Mapping[str, str] | None = None) -> None:
        stamp = now()
        connection = self._connection

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            if mapping:
                pipe.hset(key, mapping=cast(Any, mapping))
            # set_run_info's own values win over the automatic stamp (so `created` can be given).
            meta: dict[Any, Any] = {"updated": stamp, **(info or {})}
            pipe.hset(self._meta, mapping=meta)
            pipe.hsetnx(self._meta, "created", stamp)
            pipe.expire(self._results, self._ttl)
            pipe.expire(self._skipped, self._ttl)
            pipe.expire(self._meta, self._ttl)
            pipe.expire(self._tasks, self._ttl)
            connection.execute(pipe, write=True)

        connection.on(self._results, write)

    def put_results(self, results: Mapping[str, bytes]) -> None:
        if not results:
            return
        self.store.options.check_sizes(results, "the result of node {key} in run " + repr(self.run_id))
        now = time.monotonic()
        if now - self._refreshed < REFRESH_INTERVAL:
            # Within a second of the last full write: one HSET, no meta stamp or TTL refresh, so a
            # chain of quick tasks costs one command each, like a raw HSET loop.
            key = self._results
            connection = self._connection
            if not connection.options.min_replicas:
                connection.on(key, lambda client: client.hset(key, mapping=cast(Any, results)))
                return

            def write(client: redis.Redis) -> None:
                pipe = client.pipeline(transaction=False)
                pipe.hset(key, mapping=cast(Any, results))
                connection.execute(pipe, write=True)  # and WAIT for the replicas

            connection.on(key, write)
            return
        self._write(self._results, results)
        self._refreshed = now

    def mark_skipped(self, reasons: Mapping[str, str]) -> None:
        if not reasons:
            return
        self._write(self._skipped, reasons)

    def set_run_info(self, info: Mapping[str, str]) -> None:
        self._write(self._meta, {}, info)

    def put_task_records(self, records: Mapping[str, str]) -> None:
        if records:
            self._write(self._tasks, records)

    def _lease_table(self) -> RedisLeases:
        return self._leases

    def get_task_records(self) -> dict[str, str]:
        return _decode_hash(self._connection.on(self._tasks, lambda client: client.hgetall(self._tasks)))

    # -- reads ------------------------------------------------------------------------

    def get_results(self, node_ids: Iterable[str]) -> dict[str, bytes]:
        ids = list(dict.fromkeys(node_ids))
        if not ids:
            return {}
        key = self._results

        def read(client: redis.Redis) -> list[bytes | None]:
            if len(ids) <= HMGET_CHUNK:
                return cast("list[bytes | None]", client.hmget(key, ids))
            pipe = client.pipeline(transaction=False)
            for start in range(0, len(ids), HMGET_CHUNK):
                pipe.hmget(key, ids[start : start + HMGET_CHUNK])
            return [value for chunk in pipe.execute() for value in chunk]

        values = self._connection.on(key, read)
        return {node_id: value for node_id, value in zip(ids, values, strict=True) if value is not None}

    def result_ids(self) -> set[str]:
        raw = cast("list[bytes]", self._connection.on(self._results, lambda client: client.hkeys(self._results)))
        return {field.decode() for field in raw}

    def get_skip_reasons(self) -> dict[str, str]:
        return _decode_hash(self._connection.on(self._skipped, lambda client: client.hgetall(self._skipped)))

    def get_run_info(self) -> dict[str, str]:
        return _decode_hash(self._connection.on(self._meta, lambda client: client.hgetall(self._meta)))

    def close(self) -> None:
        """Nothing to release: the pool belongs to the store, which the engine closes."""

    def __repr__(self) -> str:
        return f"RedisStateBackend(run_id={self.run_id!r}, uri={str(self.store.uri)!r})"


def _decode_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash as redis returns it (bytes -> bytes; this client never decodes) as text."""
    return {field.decode(): value.decode() for field, value in raw.items()}
