"""In-process state and cache backends (``memory://``), thread-safe.

Stores are kept per process under a name (``memory://`` is the default store,
``memory://other`` another), so a second ``run()`` with the same run id in the same
process resumes, as it would with a persistent backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone

from .. import _clock
from .._store.leases import LeaseTableMixin
from .._store.limits import LimitStoreMixin
from .._store.protocols import CacheBackendBase, StateBackendBase
from .._uri import checked_ttl
from .memory_limits import MemoryLimits


class LeaseTable:
    """Leases kept in this process: name -> (owner, expiry on the monotonic clock)."""

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        now = _clock.monotonic()
        got = set()
        with self._lock:
            for name in names:
                current = self._leases.get(name)
                if current is None or current[1] <= now or current[0] == owner:
                    self._leases[name] = (owner, now + ttl)
                    got.add(name)
        return got

    def renew(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        now = _clock.monotonic()
        kept = set()
        with self._lock:
            for name in names:
                current = self._leases.get(name)
                if current is not None and current[0] == owner and current[1] > now:
                    self._leases[name] = (owner, now + ttl)
                    kept.add(name)
        return kept

    def holders(self, names: Sequence[str]) -> dict[str, str]:
        now = _clock.monotonic()
        with self._lock:
            held = ((name, self._leases.get(name)) for name in names)
            return {name: lease[0] for name, lease in held if lease is not None and lease[1] > now}

    def release(self, names: Sequence[str], owner: str) -> None:
        with self._lock:
            for name in names:
                current = self._leases.get(name)
                if current is not None and current[0] == owner:
                    del self._leases[name]


class _Run:
    __slots__ = ("results", "skipped", "info", "created", "updated")

    def __init__(self) -> None:
        self.created = self.updated = 0.0
        self.results: dict[str, bytes] = {}
        self.skipped: dict[str, str] = {}
        self.info: dict[str, str] = {}


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def _info(run: _Run) -> dict[str, str]:
    if not run.created:
        return dict(run.info)
    return {**run.info, "created": _stamp(run.created), "updated": _stamp(run.updated)}


class MemoryStateStore(LimitStoreMixin):
    """All runs of one in-process store; call it with a run id to get a backend.

    It keeps the ``max_runs`` most recently started runs (default 100) and forgets older ones,
    so a long-lived process that runs many graphs does not keep every result forever.
    """

    def __init__(self, max_runs: int = 100) -> None:
        self.max_runs = max_runs
        self._runs: dict[str, _Run] = {}
        self._leases: dict[str, LeaseTable] = {}
        self.lock = threading.Lock()
        self.limits = MemoryLimits()  # LimitStore: shared by every run of this store

    def _limit_table(self) -> MemoryLimits:
        return self.limits

    def leases(self, run_id: str) -> LeaseTable:
        """The lease table of one run (kept apart from its data, which reads must not create)."""
        with self.lock:
            table = self._leases.get(run_id)
            if table is None:
                table = self._leases[run_id] = LeaseTable()
            return table

    def __call__(self, run_id: str) -> MemoryStateBackend:
        return MemoryStateBackend(run_id, store=self)

    def get(self, run_id: str) -> _Run | None:
        return self._runs.get(run_id)

    def for_write(self, run_id: str) -> _Run:
        """The run's record, created on the first write; stamps ``created`` and ``updated``. Hold ``lock``."""
        run = self._runs.get(run_id)
        now = _clock.wall()
        if run is None:
            run = self._runs[run_id] = _Run()
            run.created = now
            while len(self._runs) > self.max_runs:
                oldest = next(iter(self._runs))
                del self._runs[oldest]
                self._leases.pop(oldest, None)
        run.updated = now  # a float: formatting a timestamp on every write costs more than the write
        return run

    def list_runs(self) -> list[dict[str, str]]:
        with self.lock:
            items = list(self._runs.items())
            return [{**_info(run), "run_id": run_id, "results": str(len(run.results))} for run_id, run in items]

    def delete_run(self, run_id: str) -> bool:
        with self.lock:
            self._leases.pop(run_id, None)
            return self._runs.pop(run_id, None) is not None

    def close(self) -> None:
        pass


_EMPTY = _Run()


class MemoryStateBackend(LeaseTableMixin, StateBackendBase):
    """State of one run, held in this process.

    It keeps no task records (the TaskRecords capability): they serve ``cascade runs show``,
    which runs in another process and cannot see this one's memory.

    >>> backend = MemoryStateBackend("run-1")
    >>> backend.put_results({"node": b"payload"})
    >>> backend.get_results(["node", "other"])
    {'node': b'payload'}
    """

    trusted_store = True  # nothing outside this process can write to it

    def __init__(self, run_id: str, store: MemoryStateStore | None = None) -> None:
        self.run_id = run_id
        self._store = store if store is not None else MemoryStateStore()
        self._lock = self._store.lock

    def _read(self) -> _Run:
        return self._store.get(self.run_id) or _EMPTY

    def put_results(self, results: Mapping[str, bytes]) -> None:
        if results:
            with self._lock:
                self._store.for_write(self.run_id).results.update(results)

    def get_results(self, node_ids: Iterable[str]) -> dict[str, bytes]:
        with self._lock:
            stored = self._read().results
            return {node_id: stored[node_id] for node_id in node_ids if node_id in stored}

    def result_ids(self) -> set[str]:
        with self._lock:
            return set(self._read().results)

    def mark_skipped(self, reasons: Mapping[str, str]) -> None:
        if reasons:
            with self._lock:
                self._store.for_write(self.run_id).skipped.update(reasons)

    def get_skip_reasons(self) -> dict[str, str]:
        with self._lock:
            return dict(self._read().skipped)

    def set_run_info(self, info: Mapping[str, str]) -> None:
        with self._lock:
            self._store.for_write(self.run_id).info.update(info)

    def get_run_info(self) -> dict[str, str]:
        with self._lock:
            return _info(self._read())

    def _lease_table(self) -> LeaseTable:
        return self._store.leases(self.run_id)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"MemoryStateBackend(run_id={self.run_id!r})"


class MemoryCacheBackend(LeaseTableMixin, CacheBackendBase):
    """A cache held in this process; entries expire ``ttl`` seconds after they are set."""

    trusted_store = True

    def __init__(self, default_ttl: float | None = None) -> None:
        self.default_ttl = default_ttl
        self._locks = LeaseTable()
        self._entries: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        now = _clock.monotonic()
        found: dict[str, bytes] = {}
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    continue
                if entry[1] is not None and entry[1] <= now:
                    del self._entries[key]
                    continue
                found[key] = entry[0]
        return found

    def count_entries(self, keys: Iterable[str]) -> int:
        now = _clock.monotonic()
        with self._lock:
            entries = self._entries
            return sum(_live(entries.get(key), now) for key in dict.fromkeys(keys))

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        ttl = self.default_ttl if ttl is None else checked_ttl(ttl)
        expires = None if ttl is None else _clock.monotonic() + ttl
        with self._lock:
            for key, value in items.items():
                self._entries[key] = (value, expires)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete entries; return how many live (unexpired) ones there were."""
        now = _clock.monotonic()
        with self._lock:
            return sum(_live(self._entries.pop(key, None), now) for key in keys)

    def _lease_table(self) -> LeaseTable:
        return self._locks

    def clear(self, prefix: str = "") -> int:
        now = _clock.monotonic()
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            return sum(_live(self._entries.pop(key), now) for key in doomed)

    def iter_entries(self) -> Iterator[tuple[str, bytes]]:
        """Every live entry as (key, payload): what ``cascade blobs gc`` reads."""
        now = _clock.monotonic()
        with self._lock:
            entries = list(self._entries.items())
        for key, (value, expires) in entries:
            if expires is None or expires > now:
                yield key, value

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"MemoryCacheBackend(entries={len(self._entries)})"


_STATE_STORES: dict[str, MemoryStateStore] = {}
_CACHES: dict[str, MemoryCacheBackend] = {}
_NAMED_LOCK = threading.Lock()


def named_state_store(name: str, max_runs: int | None = None) -> MemoryStateStore:
    """The process-wide state store called ``name`` (``""`` for ``memory://``).

    ``max_runs`` changes the store's bound when given; otherwise it keeps its own (100 at first).
    """
    with _NAMED_LOCK:
        store = _STATE_STORES.get(name)
        if store is None:
            store = _STATE_STORES[name] = MemoryStateStore()
        if max_runs is not None:
            store.max_runs = max_runs
        return store


def named_cache(name: str, default_ttl: float | None = None) -> MemoryCacheBackend:
    """The process-wide cache called ``name``."""
    with _NAMED_LOCK:
        cache = _CACHES.get(name)
        if cache is None:
            cache = _CACHES[name] = MemoryCacheBackend(default_ttl)
        return cache


def _live(entry: tuple[bytes, float | None] | None, now: float) -> bool:
    """Whether a cache entry exists and has not expired (expired ones count as gone)."""
    return entry is not None and (entry[1] is None or entry[1] > now)
