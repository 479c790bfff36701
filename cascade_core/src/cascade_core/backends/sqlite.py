"""State and cache backends in one SQLite file (``sqlite:///relative.db``, ``sqlite:////absolute.db``).

Several threads and processes may share a file: it runs in WAL mode (readers never
block the writer), waits up to ``timeout`` seconds for a lock, and every batch is one
``BEGIN IMMEDIATE`` transaction, so a write is all-or-nothing and never deadlocks on a
lock upgrade. Each backend object owns one connection, guarded by a lock.

URI options: ``timeout`` (seconds to wait for a lock, default 30), ``journal``
(``wal``, the default, or ``delete``/``truncate``/``persist`` for file systems without
shared memory, such as some network mounts) and ``ttl`` (the cache's default entry
lifetime in seconds; the state store accepts and ignores it, so one URI serves both).

Schema (version 1, kept in ``PRAGMA user_version``; a newer version is refused)::

    runs      (run_id TEXT PRIMARY KEY, created TEXT, updated TEXT)      ISO-8601 UTC
    run_info  (run_id, key, value TEXT,         PRIMARY KEY (run_id, key))
    results   (run_id, node_id, payload BLOB,   PRIMARY KEY (run_id, node_id))
    skipped   (run_id, node_id, reason TEXT,    PRIMARY KEY (run_id, node_id))
    task_records (run_id, node_id, record TEXT, PRIMARY KEY (run_id, node_id))  JSON, for `cascade runs show`
    leases    (scope, name, owner, expires_at REAL, PRIMARY KEY (scope, name))  scope "run:<id>" or "cache"
    cache     (key TEXT PRIMARY KEY, value BLOB, expires_at REAL NULL)   Unix time; NULL: never

A run's ``created`` and ``updated`` are recorded by the backend on every write of
results, skip reasons or run info; they are returned by ``get_run_info`` and
``list_runs`` and override caller-supplied values of those two keys.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .. import _clock
from .._errors import BackendUnavailableError
from .._store.limits import LimitStoreMixin
from .._store.protocols import CacheBackendBase, StateBackendBase
from .._uri import BackendURI, checked_ttl
from .sqlite_db import (
    _BACKEND_KEYS,
    DEFAULT_TIMEOUT,
    OPTIONS,
    SCHEMA_VERSION,
    _blob,
    _chunks,
    _Connection,
    _Database,
    _LeaseMixin,
    _marks,
    _now,
    _parse,
    path_from_uri,
    read_pairs,
)
from .sqlite_limits import SqliteLimits

__all__ = [
    "OPTIONS",
    "SCHEMA_VERSION",
    "SqliteCacheBackend",
    "SqliteStateBackend",
    "SqliteStateStore",
    "inspect_file",
    "path_from_uri",
]


def inspect_file(uri: BackendURI, who: str = "a check", acts: str = "writes only to") -> str:
    """The file of ``uri`` and its schema version, read-only (``mode=ro``): nothing is created or changed.

    For ``cascade backends check`` before it writes a probe, and ``cascade blobs gc`` before it
    reads references (``who`` names which in the message): a missing file, an empty one or
    another program's database is a BackendUnavailableError that says so.
    """
    db, _ = _parse(uri)
    if not os.path.isfile(db.path):
        directory = os.path.dirname(db.path)
        creates = "creates it" if os.path.isdir(directory) else f"creates it once directory {directory} exists"
        raise BackendUnavailableError(
            f"sqlite database {db.path} does not exist ({who} creates nothing): "
            f"the first run with this URI {creates}, or point the URI at an existing file"
        )
    with db.translate():
        conn = sqlite3.connect(f"{Path(db.path).as_uri()}?mode=ro", uri=True, timeout=db.timeout)
        try:
            version = db.check_version(conn)
            tables = sorted(row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        finally:
            conn.close()
    if version == 0:
        what = f"is not a Cascade database (its tables: {', '.join(tables)})" if tables else "is empty"
        raise BackendUnavailableError(
            f"sqlite database {db.path} {what}: {who} {acts} a Cascade database; "
            "point the URI at one, or at a new file that the first run creates"
        )
    return f"{db.path}, schema version {version}"


class SqliteStateStore(LimitStoreMixin):
    """Every run stored in one file; call it with a run id to get that run's backend.

    >>> import os, tempfile
    >>> store = SqliteStateStore(os.path.join(tempfile.mkdtemp(), "cascade.db"))
    >>> with store("run-1") as backend:
    ...     backend.put_results({"node": b"payload"})
    >>> [(run["run_id"], run["results"]) for run in store.list_runs()]
    [('run-1', '1')]
    >>> store.delete_run("run-1"), store.close()
    (True, None)
    """

    trusted_store = True
    serializer = "pickle"

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT, journal: str = "wal") -> None:
        self._db = _Database(os.fspath(path), timeout=timeout, journal=journal)
        self._conn = _Connection(self._db, f"sqlite state store {self._db.path}")
        self._backends: weakref.WeakSet[SqliteStateBackend] = weakref.WeakSet()
        self._limits = SqliteLimits(self._conn)  # LimitStore: shared by every run of the file
        with self._conn.read():
            pass  # fail now, not at the first write, when the file cannot be used

    @classmethod
    def from_uri(cls, uri: BackendURI) -> SqliteStateStore:
        """The store of ``sqlite:///path.db?timeout=S&journal=wal``."""
        db, _ = _parse(uri)
        return cls(db.path, timeout=db.timeout, journal=db.journal)

    @property
    def path(self) -> str:
        return self._db.path

    def _limit_table(self) -> SqliteLimits:
        return self._limits

    def __call__(self, run_id: str) -> SqliteStateBackend:
        backend = SqliteStateBackend(run_id, self._db)
        self._backends.add(backend)
        return backend

    def list_runs(self) -> list[dict[str, str]]:
        """Every run with its info, ``created``, ``updated`` and ``results`` (a count), oldest first."""
        with self._conn.read() as conn:
            rows = conn.execute(
                "SELECT r.run_id, r.created, r.updated, i.key, i.value,"
                " (SELECT count(*) FROM results s WHERE s.run_id = r.run_id)"
                " FROM runs r LEFT JOIN run_info i ON i.run_id = r.run_id ORDER BY r.created, r.run_id"
            ).fetchall()
        runs: dict[str, dict[str, str]] = {}
        for run_id, created, updated, key, value, count in rows:
            run = runs.get(run_id)
            if run is None:
                run = runs[run_id] = {"run_id": run_id, "results": str(count)}
            if key is not None and key not in run:  # the computed run_id and results win, as in memory://
                run[key] = value
            run.update(created=created, updated=updated)
        return list(runs.values())

    def delete_run(self, run_id: str) -> bool:
        """Delete a run's results, skip reasons and info; return whether it existed."""
        with self._conn.write() as conn:
            existed = conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount > 0
            conn.execute("DELETE FROM leases WHERE scope = ?", (f"run:{run_id}",))
            for table in ("results", "skipped", "run_info", "task_records"):
                existed = conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,)).rowcount > 0 or existed
        return existed

    def close(self) -> None:
        """Close the store's connection and those of the backends it handed out."""
        for backend in list(self._backends):
            backend.close()
        self._conn.close()

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStateStore({self._db.path!r})"


class SqliteStateBackend(_LeaseMixin, StateBackendBase):
    """The state of one run, in a SQLite file."""

    trusted_store = True
    serializer = "pickle"

    def __init__(self, run_id: str, db: _Database) -> None:
        self.run_id = run_id
        self._db = db
        self._conn = _Connection(db, f"sqlite state backend for run {run_id!r} in {db.path}")
        self._lease_scope = f"run:{run_id}"

    @classmethod
    def from_uri(cls, uri: BackendURI, run_id: str) -> SqliteStateBackend:
        """The backend of run ``run_id`` in the file of ``uri``."""
        db, _ = _parse(uri)
        return cls(run_id, db)

    def _touch(self, conn: sqlite3.Connection) -> None:
        now = _now()
        conn.execute(
            "INSERT INTO runs (run_id, created, updated) VALUES (?, ?, ?)"
            " ON CONFLICT (run_id) DO UPDATE SET updated = excluded.updated",
            (self.run_id, now, now),
        )

    def put_results(self, results: Mapping[str, bytes]) -> None:
        rows = [(self.run_id, node_id, _blob(node_id, payload)) for node_id, payload in results.items()]
        if not rows:
            return
        with self._conn.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO results (run_id, node_id, payload) VALUES (?, ?, ?)", rows)
            self._touch(conn)

    def get_results(self, node_ids: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(node_ids))
        found: dict[str, bytes] = {}
        with self._conn.read() as conn:
            for chunk in _chunks(wanted):
                found.update(
                    conn.execute(
                        f"SELECT node_id, payload FROM results WHERE run_id = ? AND node_id IN ({_marks(len(chunk))})",
                        (self.run_id, *chunk),
                    )
                )
        return found

    def result_ids(self) -> set[str]:
        with self._conn.read() as conn:
            return {row[0] for row in conn.execute("SELECT node_id FROM results WHERE run_id = ?", (self.run_id,))}

    def mark_skipped(self, reasons: Mapping[str, str]) -> None:
        rows = [(self.run_id, node_id, str(reason)) for node_id, reason in reasons.items()]
        if not rows:
            return
        with self._conn.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO skipped (run_id, node_id, reason) VALUES (?, ?, ?)", rows)
            self._touch(conn)

    def get_skip_reasons(self) -> dict[str, str]:
        with self._conn.read() as conn:
            return dict(conn.execute("SELECT node_id, reason FROM skipped WHERE run_id = ?", (self.run_id,)))

    def set_run_info(self, info: Mapping[str, str]) -> None:
        if not info:
            return
        rows = [(self.run_id, str(key), str(value)) for key, value in info.items() if key not in _BACKEND_KEYS]
        with self._conn.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO run_info (run_id, key, value) VALUES (?, ?, ?)", rows)
            self._touch(conn)

    def get_run_info(self) -> dict[str, str]:
        with self._conn.read() as conn:
            # One statement, so the info and the timestamps come from the same snapshot.
            rows = conn.execute(
                "SELECT key, value FROM run_info WHERE run_id = ?1"
                " UNION ALL SELECT 'created', created FROM runs WHERE run_id = ?1"
                " UNION ALL SELECT 'updated', updated FROM runs WHERE run_id = ?1",
                (self.run_id,),
            ).fetchall()
        return dict(rows)

    def put_task_records(self, records: Mapping[str, str]) -> None:
        rows = [(self.run_id, node_id, str(record)) for node_id, record in records.items()]
        if not rows:
            return
        with self._conn.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO task_records (run_id, node_id, record) VALUES (?, ?, ?)", rows)
            self._touch(conn)

    def get_task_records(self) -> dict[str, str]:
        with self._conn.read() as conn:
            return dict(conn.execute("SELECT node_id, record FROM task_records WHERE run_id = ?", (self.run_id,)))

    def close(self) -> None:
        self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteStateBackend(run_id={self.run_id!r}, path={self._db.path!r})"


class SqliteCacheBackend(_LeaseMixin, CacheBackendBase):
    """A cache in a SQLite file; entries expire ``ttl`` seconds after they are set (None: never).

    Expired entries are never returned; ``set_many`` deletes them from the file.
    """

    trusted_store = True
    serializer = "pickle"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        default_ttl: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        journal: str = "wal",
    ) -> None:
        self.default_ttl = default_ttl
        self._db = _Database(os.fspath(path), timeout=timeout, journal=journal)
        self._conn = _Connection(self._db, f"sqlite cache {self._db.path}")
        self._lease_scope = "cache"
        with self._conn.read():
            pass  # fail now, not at the first write, when the file cannot be used

    @classmethod
    def from_uri(cls, uri: BackendURI) -> SqliteCacheBackend:
        """The cache of ``sqlite:///path.db?ttl=S&timeout=S&journal=wal``."""
        db, options = _parse(uri)
        return cls(db.path, default_ttl=options.get("ttl"), timeout=db.timeout, journal=db.journal)

    @property
    def path(self) -> str:
        return self._db.path

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        def query(marks: str) -> str:
            return f"SELECT key, value FROM cache WHERE key IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)"

        return read_pairs(self._conn, query, list(dict.fromkeys(keys)), after=(_clock.wall(),))

    def count_entries(self, keys: Iterable[str]) -> int:
        wanted = list(dict.fromkeys(keys))
        now = _clock.wall()
        with self._conn.read() as conn:
            return sum(
                conn.execute(
                    f"SELECT COUNT(*) FROM cache WHERE key IN ({_marks(len(chunk))})"
                    " AND (expires_at IS NULL OR expires_at > ?)",
                    (*chunk, now),
                ).fetchone()[0]
                for chunk in _chunks(wanted)
            )

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        ttl = self.default_ttl if ttl is None else checked_ttl(ttl)
        now = _clock.wall()
        expires = None if ttl is None else now + ttl
        rows = [(key, _blob(key, value), expires) for key, value in items.items()]
        if not rows:
            return
        with self._conn.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO cache (key, value, expires_at) VALUES (?, ?, ?)", rows)
            conn.execute("DELETE FROM cache WHERE expires_at <= ?", (now,))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete entries; return how many live (unexpired) ones there were."""
        doomed = list(dict.fromkeys(keys))
        if not doomed:
            return 0
        now = _clock.wall()
        count = 0
        with self._conn.write() as conn:
            for chunk in _chunks(doomed):
                marks = _marks(len(chunk))
                count += conn.execute(
                    f"SELECT count(*) FROM cache WHERE key IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)",
                    (*chunk, now),
                ).fetchone()[0]
                conn.execute(f"DELETE FROM cache WHERE key IN ({marks})", chunk)
        return int(count)

    def clear(self, prefix: str = "") -> int:
        """Delete every entry whose key starts with ``prefix`` (all of them for ``""``); return how many were live."""
        # substr, not LIKE: '%' and '_' in a prefix are literal, and the match is case-sensitive.
        matching = "substr(key, 1, length(?1)) = ?1"
        with self._conn.write() as conn:
            live = conn.execute(
                f"SELECT count(*) FROM cache WHERE {matching} AND (expires_at IS NULL OR expires_at > ?2)",
                (prefix, _clock.wall()),
            ).fetchone()[0]
            conn.execute(f"DELETE FROM cache WHERE {matching}", (prefix,))
        return int(live)

    def iter_entries(self) -> Iterator[tuple[str, bytes]]:
        """Every live entry as (key, payload): what ``cascade blobs gc`` reads."""
        with self._conn.read() as conn:
            live = "expires_at IS NULL OR expires_at > ?"
            rows = conn.execute(f"SELECT key, value FROM cache WHERE {live}", (_clock.wall(),))
            for key, value in rows:
                yield key, bytes(value)

    def close(self) -> None:
        self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteCacheBackend({self._db.path!r})"
