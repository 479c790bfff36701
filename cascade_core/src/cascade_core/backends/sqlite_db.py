"""The SQLite file behind ``sqlite://``: its schema, connections, transactions, error advice and
the leases table.

The schema and the locking rules are described in ``backends/sqlite.py``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any

from .. import _clock
from .._errors import BackendUnavailableError, InvalidURIError, SerializationError
from .._uri import BackendURI, choice, positive_float, timeout_seconds

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
    return datetime.fromtimestamp(_clock.wall(), timezone.utc).isoformat(timespec="milliseconds")


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(count: int) -> str:
    return ",".join("?" * count)


def read_pairs(
    connection: Any, query: Callable[[str], str], names: list[str], before: tuple = (), after: tuple = ()
) -> dict:
    """The (name, value) rows of ``query(marks)`` for ``names``, asked in chunks in one read
    transaction; ``before`` and ``after`` are the parameters around each chunk's names."""
    found: dict = {}
    with connection.read() as conn:
        for chunk in _chunks(names):
            found.update(conn.execute(query(_marks(len(chunk))), (*before, *chunk, *after)))
    return found


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
        if self.check_version(conn) == SCHEMA_VERSION:
            return
        with _transaction(conn):
            if self.check_version(conn) < SCHEMA_VERSION:  # checked again: another process may have won
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

    def check_version(self, conn: sqlite3.Connection) -> int:
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


class _LeaseMixin:
    """Leases in the ``leases`` table, under one scope (a run, or the cache). Wall-clock expiry:
    the processes sharing a file share a machine, hence a clock."""

    _conn: _Connection
    _lease_scope: str

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return set()
        now = _clock.wall()
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
        now = _clock.wall()
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

    def lease_holders(self, names: Sequence[str]) -> dict[str, str]:
        def query(marks: str) -> str:
            return f"SELECT name, owner FROM leases WHERE scope = ? AND expires_at > ? AND name IN ({marks})"

        return read_pairs(self._conn, query, list(dict.fromkeys(names)), before=(self._lease_scope, _clock.wall()))

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
