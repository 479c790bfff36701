"""Named limits in a ``sqlite://`` file: two tables, each acquisition one ``BEGIN IMMEDIATE``
transaction, times on the wall clock of the machine (every process sharing a file shares it).

The tables (docs/backends.md, "Limits"), made on first use::

    limits         name, concurrency, rate, per, burst, paused, tat, window_start, window_count, last_count
    limit_holders  name, holder, expires_at, waiting (0: holds a slot, 1: refused, waiting)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .. import _clock
from .._store.limits import LimitRow, LimitRules

_TABLES = (
    """CREATE TABLE IF NOT EXISTS limits (
    name         TEXT PRIMARY KEY,
    concurrency  INTEGER,
    rate         REAL,
    per          REAL NOT NULL,
    burst        INTEGER NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    tat          REAL NOT NULL DEFAULT 0,
    window_start REAL NOT NULL DEFAULT 0,
    window_count INTEGER NOT NULL DEFAULT 0,
    last_count   INTEGER NOT NULL DEFAULT 0
)""",
    """CREATE TABLE IF NOT EXISTS limit_holders (
    name       TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL,
    waiting    INTEGER NOT NULL,
    PRIMARY KEY (name, holder)
)""",
)
_COLUMNS = "concurrency, rate, per, burst, paused, tat, window_start, window_count, last_count"


class SqliteLimits:
    """The LimitStore of one sqlite file; ``connection`` is its store's ``_Connection``."""

    def __init__(self, connection: Any) -> None:
        self._conn = connection
        self._ready = False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; the tables are made in the first one."""
        with self._conn.write() as conn:
            if not self._ready:
                for statement in _TABLES:
                    conn.execute(statement)
                self._ready = True
            yield conn

    def set_limit(self, name: str, concurrency: int | None, rate: float | None, per: float, burst: int) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO limits (name, concurrency, rate, per, burst) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET concurrency = excluded.concurrency, rate = excluded.rate, per = excluded.per, "
                "burst = excluded.burst",
                (name, concurrency, rate, per, burst),
            )

    def get_limits(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        with self._write() as conn:  # a write: it makes the tables when there are none yet
            now = _clock.wall()
            found = [row[0] for row in conn.execute("SELECT name FROM limits ORDER BY name")]
            wanted = found if names is None else [name for name in found if name in set(names)]
            shown = {}
            for name in wanted:
                loaded = _load(conn, name)
                if loaded is not None:
                    shown[name] = LimitRules.status(*loaded, now)
            return shown

    def pause_limit(self, name: str, paused: bool) -> bool:
        with self._write() as conn:
            return conn.execute("UPDATE limits SET paused = ? WHERE name = ?", (int(paused), name)).rowcount > 0

    def delete_limit(self, name: str) -> bool:
        with self._write() as conn:
            conn.execute("DELETE FROM limit_holders WHERE name = ?", (name,))
            return conn.execute("DELETE FROM limits WHERE name = ?", (name,)).rowcount > 0

    def acquire_limit(self, name: str, holder: str, ttl: float) -> float | None:
        with self._write() as conn:
            loaded = _load(conn, name)
            if loaded is None:
                return None
            row, held, waiting = loaded
            now = _clock.wall()
            wait = LimitRules.acquire(row, held, waiting, holder, now, ttl)
            conn.execute(
                "UPDATE limits SET tat = ?, window_start = ?, window_count = ?, last_count = ? WHERE name = ?",
                (row.tat, row.window, row.count, row.last, name),
            )
            conn.execute(
                "DELETE FROM limit_holders WHERE name = ? AND (expires_at <= ? OR holder = ?)", (name, now, holder)
            )
            for table, flag in ((held, 0), (waiting, 1)):
                if holder in table:
                    conn.execute("INSERT INTO limit_holders VALUES (?, ?, ?, ?)", (name, holder, table[holder], flag))
            return wait

    def renew_limit(self, name: str, holders: Sequence[str], ttl: float) -> set[str]:
        kept = set()
        with self._write() as conn:
            now = _clock.wall()
            for holder in holders:
                cursor = conn.execute(
                    "UPDATE limit_holders SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?",
                    (now + ttl, name, holder, now),
                )
                if cursor.rowcount:
                    kept.add(holder)
        return kept

    def release_limit(self, name: str, holders: Sequence[str]) -> None:
        with self._write() as conn:
            conn.executemany("DELETE FROM limit_holders WHERE name = ? AND holder = ?", [(name, h) for h in holders])


def _load(conn: sqlite3.Connection, name: str) -> tuple[LimitRow, dict[str, float], dict[str, float]] | None:
    found = conn.execute(f"SELECT {_COLUMNS} FROM limits WHERE name = ?", (name,)).fetchone()
    if found is None:
        return None
    concurrency, rate, per, burst, paused, tat, window, count, last = found
    row = LimitRow(concurrency, rate, per, burst, bool(paused), tat, window, count, last)
    held: dict[str, float] = {}
    waiting: dict[str, float] = {}
    for holder, expires_at, flag in conn.execute(
        "SELECT holder, expires_at, waiting FROM limit_holders WHERE name = ?", (name,)
    ):
        (waiting if flag else held)[holder] = expires_at
    return row, held, waiting
