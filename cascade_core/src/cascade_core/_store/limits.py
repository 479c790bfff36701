"""Named limits kept in a state store: the LimitStore capability, settings, and their rules.

A limit has a ``concurrency`` (at most N tasks naming it run at once, everywhere the store is
used), a ``rate`` (at most ``rate`` starts per ``per`` seconds, with a ``burst``), or both, and
can be paused. Concurrency slots are leases: each holder renews its slot with the run's other
leases, and a holder that dies loses it after the lease TTL. The rate is GCRA (the generic cell
rate algorithm, a token bucket of ``burst`` tokens refilled every ``per / rate`` seconds) on the
store's own clock. docs/concepts.md "Limits", docs/backends.md "Limits".

:class:`LimitRules` is the whole decision, for the stores that decide in Python (memory, sqlite);
cascade-redis does the same in one Lua script.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._errors import LimitError
from .._uri import LIMIT_NAME

# Seconds a refused acquisition is asked again after (the store's hint), unless the rate tells
# exactly when the next token comes.
SLOT_POLL = 0.05  # a slot taken: ask again soon, a holder may finish any moment
PAUSED_POLL = 0.25  # paused: resume is seen within this
MAX_CONCURRENCY = 1_000_000
MAX_BURST = 1_000_000
_RATE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(s|sec|second|m|min|minute)\s*")
_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}


@runtime_checkable
class LimitStore(Protocol):
    """Optional capability of a state-backend factory (or a state backend): named limits shared
    by every run using the store. Names match ``[A-Za-z0-9][A-Za-z0-9_.-]{0,99}``; holders are
    opaque strings unique per acquisition. Times are the store's clock, never the caller's.
    """

    def set_limit(self, name: str, concurrency: int | None, rate: float | None, per: float, burst: int) -> None:
        """Create or replace limit ``name``'s settings (holders, pause and rate state are kept)."""

    def get_limits(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """The limits named (every one: None), each as :meth:`LimitRules.status` describes it."""

    def pause_limit(self, name: str, paused: bool) -> bool:
        """Pause (no new acquisition succeeds) or resume ``name``; whether it exists."""

    def delete_limit(self, name: str) -> bool:
        """Delete ``name`` with its holders; whether it existed."""

    def acquire_limit(self, name: str, holder: str, ttl: float) -> float | None:
        """One slot (and one rate token) of ``name`` for ``holder``, held ``ttl`` seconds unless
        renewed: 0.0 when taken (or already held); else the seconds to wait before asking again,
        and ``holder`` is counted as waiting for ``ttl`` seconds. None: no such limit."""

    def renew_limit(self, name: str, holders: Sequence[str], ttl: float) -> set[str]:
        """Extend the slots (or waiting marks) of ``holders`` that are still live; return those."""

    def release_limit(self, name: str, holders: Sequence[str]) -> None:
        """Free the slots and waiting marks of ``holders``; others are left alone."""


LIMIT_METHODS = (
    "set_limit",
    "get_limits",
    "pause_limit",
    "delete_limit",
    "acquire_limit",
    "renew_limit",
    "release_limit",
)


class LimitStoreMixin:
    """The LimitStore methods of a store, forwarded to ``self._limit_table()``: an object with the
    same methods (how memory, sqlite and cascade-redis keep theirs apart from their other code)."""

    def _limit_table(self) -> LimitStore:
        raise NotImplementedError

    def set_limit(self, name: str, concurrency: int | None, rate: float | None, per: float, burst: int) -> None:
        self._limit_table().set_limit(name, concurrency, rate, per, burst)

    def get_limits(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        return self._limit_table().get_limits(names)

    def pause_limit(self, name: str, paused: bool) -> bool:
        return self._limit_table().pause_limit(name, paused)

    def delete_limit(self, name: str) -> bool:
        return self._limit_table().delete_limit(name)

    def acquire_limit(self, name: str, holder: str, ttl: float) -> float | None:
        return self._limit_table().acquire_limit(name, holder, ttl)

    def renew_limit(self, name: str, holders: Sequence[str], ttl: float) -> set[str]:
        return self._limit_table().renew_limit(name, holders, ttl)

    def release_limit(self, name: str, holders: Sequence[str]) -> None:
        self._limit_table().release_limit(name, holders)


@dataclass
class LimitSettings:
    """What ``cascade limits set`` and ``cs.set_limit`` store; checked by :func:`checked_settings`."""

    concurrency: int | None = None
    rate: float | None = None  # starts per ``per`` seconds
    per: float = 1.0
    burst: int = 1


def parse_rate(text: Any) -> tuple[float, float]:
    """``"10/s"`` -> (10.0, 1.0), ``"30/m"`` -> (30.0, 60.0); LimitError for anything else."""
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    count = float(match.group(1)) if match else 0.0
    if match is None or not (math.isfinite(count) and count > 0):
        raise LimitError(
            f"rate {text!r} is not a rate: write a number greater than 0 per second or per minute, "
            "such as '10/s' or '30/m'"
        )
    return count, _PERIODS[match.group(2)]


def checked_settings(name: Any, concurrency: Any = None, rate: Any = None, burst: Any = None) -> LimitSettings:
    """The settings of ``cs.set_limit`` (``rate``: ``"10/s"``, ``"30/m"``), each bad value a LimitError."""
    if not isinstance(name, str) or not LIMIT_NAME.fullmatch(name):
        raise LimitError(
            f"limit name {name!r} must be 1 to 100 letters, digits, '_', '.' or '-' (starting with a letter or digit)"
        )
    if concurrency is None and rate is None:
        raise LimitError(f"limit {name!r} needs a concurrency, a rate or both (such as concurrency=5, rate='10/s')")
    if concurrency is not None and not _whole(concurrency, MAX_CONCURRENCY):
        raise LimitError(
            f"limit {name!r}: concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {concurrency!r}"
        )
    settings = LimitSettings(concurrency=concurrency)
    if rate is not None:
        settings.rate, settings.per = parse_rate(rate)
    if burst is not None:
        if rate is None:
            raise LimitError(f"limit {name!r}: a burst needs a rate (such as rate='10/s', burst=5)")
        if not _whole(burst, MAX_BURST):
            raise LimitError(f"limit {name!r}: burst must be a whole number from 1 to {MAX_BURST}, got {burst!r}")
        settings.burst = burst
    return settings


def _whole(value: Any, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= maximum


def limit_store_of(*candidates: Any) -> LimitStore | None:
    """The first of ``candidates`` (a state-backend factory, a state backend) that keeps limits."""
    for candidate in candidates:
        if candidate is not None and all(callable(getattr(candidate, name, None)) for name in LIMIT_METHODS):
            return candidate  # type: ignore[no-any-return]
    return None


@dataclass
class LimitRow:
    """One limit as the Python stores keep it: settings, pause, GCRA and window counters."""

    concurrency: int | None
    rate: float | None
    per: float
    burst: int
    paused: bool = False
    tat: float = 0.0  # GCRA: the theoretical arrival time of the next start
    window: float = 0.0  # start of the current ``per``-second window
    count: int = 0  # starts in it
    last: int = 0  # starts in the window before


class LimitRules:
    """The decision of one acquisition and the status of one limit, on plain dicts of
    holder -> expiry (``held``: slots; ``waiting``: refused askers), at time ``now``."""

    @staticmethod
    def acquire(
        row: LimitRow, held: dict[str, float], waiting: dict[str, float], holder: str, now: float, ttl: float
    ) -> float:
        LimitRules.purge(held, waiting, now)
        if holder in held:
            held[holder] = now + ttl
            return 0.0
        wait = 0.0
        if row.paused:
            wait = PAUSED_POLL
        elif row.concurrency is not None and len(held) >= row.concurrency:
            wait = SLOT_POLL
        elif row.rate is not None:
            interval = row.per / row.rate
            tat = max(row.tat, now)
            allowance = (row.burst - 1) * interval
            if tat - now > allowance:
                wait = max(tat - allowance - now, 0.001)
            else:
                row.tat = tat + interval
        if wait:
            waiting[holder] = now + ttl
            return wait
        waiting.pop(holder, None)
        if now - row.window >= row.per:
            row.last = row.count if now - row.window < 2 * row.per else 0
            row.window, row.count = now, 0
        row.count += 1
        if row.concurrency is not None:
            held[holder] = now + ttl
        return 0.0

    @staticmethod
    def renew(
        held: dict[str, float], waiting: dict[str, float], holders: Sequence[str], now: float, ttl: float
    ) -> set[str]:
        LimitRules.purge(held, waiting, now)
        kept = set()
        for holder in holders:
            for table in (held, waiting):
                if holder in table:
                    table[holder] = now + ttl
                    kept.add(holder)
        return kept

    @staticmethod
    def purge(held: dict[str, float], waiting: dict[str, float], now: float) -> None:
        for table in (held, waiting):
            for holder in [holder for holder, expiry in table.items() if expiry <= now]:
                del table[holder]

    @staticmethod
    def status(row: LimitRow, held: Mapping[str, float], waiting: Mapping[str, float], now: float) -> dict[str, Any]:
        """``concurrency``, ``rate`` and ``per`` (None when unset), ``burst``, ``paused``, ``holders``
        and ``waiting`` (how many live), ``recent_starts`` (starts in the current ``per``-second
        window and the one before, the current rate) and ``next_start_in`` (seconds until the
        rate lets one more start)."""
        current = row.count if now - row.window < row.per else 0
        before = row.last if now - row.window < row.per else (row.count if now - row.window < 2 * row.per else 0)
        next_in = 0.0
        if row.rate is not None:
            next_in = max(0.0, row.tat - (row.burst - 1) * (row.per / row.rate) - now)
        return {
            "concurrency": row.concurrency,
            "rate": row.rate,
            "per": row.per,
            "burst": row.burst,
            "paused": row.paused,
            "holders": sum(1 for expiry in held.values() if expiry > now),
            "waiting": sum(1 for expiry in waiting.values() if expiry > now),
            "recent_starts": [current, before],
            "next_start_in": round(next_in, 3),
        }
