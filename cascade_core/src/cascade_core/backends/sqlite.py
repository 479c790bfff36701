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
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any

from .._errors import BackendUnavailableError, InvalidURIError, SerializationError
from .._protocols import CacheBackendBase, StateBackendBase
from .._uri import BackendURI, checked_ttl, choice, positive_float, timeout_seconds

SCHEMA_VERSION = 1
DEFAULT_TIMEOUT = 30.0

OPTIONS = {
    "timeout": timeout_seconds,
    "journal": choice("wal", "delete", "truncate", "persist"),
    "ttl": positive_float,
}

# Parameters per statement: far under SQLite's smallest compiled-in limit (999 before 3.32).
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id  TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_info (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS results (
    run_id  TEXT NOT NULL,
    node_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (run_id, node_id)
);
CREATE TABLE IF NOT EXISTS skipped (
    run_id  TEXT NOT NULL,
    node_id TEXT NOT NULL,
    reason  TEXT NOT NULL,
    PRIMARY KEY (run_id, node_id)
);
CREATE TABLE IF NOT EXISTS task_records (
    run_id  TEXT NOT NULL,
    node_id TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (run_id, node_id)
);
CREATE TABLE IF NOT EXISTS leases (
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (scope, name)
);
CREATE TABLE IF NOT EXISTS cache (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS cache_expires_at ON cache (expires_at) WHERE expires_at IS NOT NULL;
"""

_BACKEND_KEYS = ("created", "updated")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(count: int) -> str:
    return ",".join("?" * count)


class _LeaseMixin:
    """Leases in the ``leases`` table, under one scope (a run, or the cache). Wall-clock expiry:
    the processes sharing a file share a machine, hence a clock."""

    _conn: _Connection
    _lease_scope: str

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return set()
        now = time.time()
        got: set[str] = set()
        with self._conn.write() as conn:
            for chunk in _chunks(wanted):
                marks = _marks(len(chunk))
                conn.execute(
                    f"DELETE FROM leases WHERE scope = ? AND expires_at <= ? AND name IN ({marks})",
                    (self._lease_scope, now, *chunk),
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO leases (scope, name, owner, expires_at) VALUES (?, ?, ?, ?)",
                    [(self._lease_scope, name, owner, now + ttl) for name in chunk],
                )
                conn.execute(
                    f"UPDATE leases SET expires_at = ? WHERE scope = ? AND owner = ? AND name IN ({marks})",
                    (now + ttl, self._lease_scope, owner, *chunk),
                )
                got.update(
                    row[0]
                    for row in conn.execute(
                        f"SELECT name FROM leases WHERE scope = ? AND owner = ? AND name IN ({marks})",
                        (self._lease_scope, owner, *chunk),
                    )
                )
        return got

    def renew_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        wanted = list(dict.fromkeys(names))
        now = time.time()
        kept: set[str] = set()
        with self._conn.write() as conn:
            for chunk in _chunks(wanted):
                marks = _marks(len(chunk))
                args = (self._lease_scope, owner, now, *chunk)
                conn.execute(
                    "UPDATE leases SET expires_at = ? WHERE scope = ? AND owner = ? AND expires_at > ?"
                    f" AND name IN ({marks})",
                    (now + ttl, *args),
                )
                kept.update(
                    row[0]
                    for row in conn.execute(
                        "SELECT name FROM leases WHERE scope = ? AND owner = ? AND expires_at > ?"
                        f" AND name IN ({marks})",
                        args,
                    )
                )
        return kept

    def release_leases(self, names: Sequence[str], owner: str) -> None:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return
        with self._conn.write() as conn:
            for chunk in _chunks(wanted):
                conn.execute(
                    f"DELETE FROM leases WHERE scope = ? AND owner = ? AND name IN ({_marks(len(chunk))})",
                    (self._lease_scope, owner, *chunk),
                )


def _blob(node_or_key: str, value: Any) -> bytes:
    # sqlite3 would store a str as TEXT and hand back a str: refuse anything that is not bytes-like.
    if type(value) is bytes:
        return value
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise TypeError(f"backends store bytes; got {type(value).__name__} for {node_or_key!r}") from None


def path_from_uri(uri: BackendURI) -> str:
    """The absolute file path of a ``sqlite://`` URI (relative paths are resolved against the cwd now)."""
    if uri.host or uri.port is not None or uri.username is not None or uri.password is not None:
        guess = f"sqlite:///{uri.host or ''}{uri.path}"
        raise InvalidURIError(
            f"a sqlite URI has no host: write {guess!r} (relative to the working directory) "
            f"or 'sqlite:////absolute/path.db', not {str(uri)!r}"
        )
    path = uri.database
    if not path:
        raise InvalidURIError(
            f"{str(uri)!r} names no database file: write 'sqlite:///relative/path.db' or 'sqlite:////absolute/path.db'"
        )
    if path == ":memory:" or path.startswith("file:"):
        raise InvalidURIError(
            f"{str(uri)!r} is not a file path: write 'sqlite:///relative/path.db', "
            "or use memory:// for an in-process store"
        )
    return os.path.abspath(path)


class _Database:
    """Where the file is and how to connect to it; shared by every backend on that file."""

    def __init__(self, path: str, *, timeout: float = DEFAULT_TIMEOUT, journal: str = "wal") -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.timeout = timeout
        self.journal = journal

    def connect(self) -> sqlite3.Connection:
        """A connection in autocommit mode (transactions are explicit), schema checked or created."""
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise BackendUnavailableError(
                f"directory {directory} does not exist: create it or point the sqlite URI at an existing directory"
            )
        with self.translate():
            # check_same_thread=False: the owning backend serializes use with its own lock.
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        mode = self._set_journal_mode(conn)
        if mode.lower() != self.journal:
            raise BackendUnavailableError(
                f"sqlite database {self.path} cannot use journal mode {self.journal} (it is in {mode} mode): "
                "use ?journal=delete on file systems without shared memory"
            )
        # In WAL mode NORMAL loses no committed transaction when a process crashes, only on power loss.
        conn.execute("PRAGMA synchronous = NORMAL" if self.journal == "wal" else "PRAGMA synchronous = FULL")
        if self._check_version(conn) == SCHEMA_VERSION:
            return
        with _transaction(conn):
            if self._check_version(conn) < SCHEMA_VERSION:  # checked again: another process may have won
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _set_journal_mode(self, conn: sqlite3.Connection) -> str:
        # Switching a new file to WAL can report "database is locked" at once, without waiting
        # for busy_timeout, while other processes open the same file: retry until the timeout.
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                return str(conn.execute(f"PRAGMA journal_mode = {self.journal}").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _check_version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise BackendUnavailableError(
                f"sqlite database {self.path} has schema version {version}, newer than the {SCHEMA_VERSION} this "
                "cascade-core reads: upgrade cascade-core or use another file"
            )
        return version

    @contextmanager
    def translate(self) -> Iterator[None]:
        """Turn sqlite3 errors about the file into one-line BackendUnavailableError (chained)."""
        try:
            yield
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a bug in the calling code, not a problem with the store
        except sqlite3.DataError as exc:
            raise SerializationError(f"sqlite database {self.path} refused a value: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise BackendUnavailableError(f"sqlite database {self.path} is unavailable: {exc}: {_advice(exc)}") from exc


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front (waiting up to busy_timeout): a deferred
    # transaction that reads and then writes can fail at once with "database is locked".
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # the original error says more than a failed rollback
                conn.execute("ROLLBACK")
        raise


def _advice(exc: sqlite3.DatabaseError) -> str:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "another process held a lock for longer than the timeout; raise ?timeout=SECONDS or stop that process"
    if "unable to open" in text or "readonly" in text or "read-only" in text:
        return "check that the file and its directory exist and are writable"
    if "not a database" in text or "malformed" in text:
        return "the file is not a Cascade sqlite database; point the URI at another file"
    if "disk" in text or "full" in text:
        return "check free disk space and the file system"
    return "check the file and its directory"


# Connections inherited through fork(): SQLite forbids using them in the child, and closing
# one there could drop the child's own POSIX locks on the file, so they are kept, unused.
_INHERITED: list[sqlite3.Connection] = []


class _Connection:
    """One connection, opened on first use, shared by threads under a lock.

    One connection rather than one per thread: SQLite admits one writer at a time anyway,
    and a connection per thread would stay open after its thread ends.
    """

    def __init__(self, db: _Database, owner: str) -> None:
        self._db = db
        self._owner = owner
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False

    def _get(self) -> sqlite3.Connection:
        if self._closed:
            raise BackendUnavailableError(f"{self._owner} is closed: open a new one")
        if self._pid != os.getpid():  # this process is a fork() child
            if self._conn is not None:
                _INHERITED.append(self._conn)
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            self._conn = self._db.connect()
        return self._conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads; a single SELECT sees one consistent snapshot."""
        with self._lock, self._db.translate():
            yield self._get()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``: committed on success, rolled back on error."""
        with self._lock, self._db.translate():
            conn = self._get()
            with _transaction(conn):
                yield conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()
            elif conn is not None:
                _INHERITED.append(conn)

    def __del__(self) -> None:
        # A backend dropped without close(): close quietly rather than leave it to the
        # sqlite3 module, which warns (ResourceWarning) from Python 3.13.
        conn = getattr(self, "_conn", None)
        if conn is not None and self._pid == os.getpid():
            conn.close()


def _parse(uri: BackendURI) -> tuple[_Database, dict[str, Any]]:
    options = uri.parse_options(OPTIONS)
    path = path_from_uri(uri)
    db = _Database(path, timeout=options.get("timeout", DEFAULT_TIMEOUT), journal=options.get("journal", "wal"))
    return db, options


class SqliteStateStore:
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
        wanted = list(dict.fromkeys(keys))
        now = time.time()
        found: dict[str, bytes] = {}
        with self._conn.read() as conn:
            for chunk in _chunks(wanted):
                found.update(
                    conn.execute(
                        f"SELECT key, value FROM cache WHERE key IN ({_marks(len(chunk))})"
                        " AND (expires_at IS NULL OR expires_at > ?)",
                        (*chunk, now),
                    )
                )
        return found

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        ttl = self.default_ttl if ttl is None else checked_ttl(ttl)
        now = time.time()
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
        now = time.time()
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
                (prefix, time.time()),
            ).fetchone()[0]
            conn.execute(f"DELETE FROM cache WHERE {matching}", (prefix,))
        return int(live)

    def close(self) -> None:
        self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteCacheBackend({self._db.path!r})"
