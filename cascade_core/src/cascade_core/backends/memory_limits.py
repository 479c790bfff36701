"""Named limits kept in this process (``memory://``): a dict under a lock, the monotonic clock."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .. import _clock
from .._store.limits import LimitRow, LimitRules


class MemoryLimits:
    """The LimitStore of one in-process store: name -> (row, held slots, waiting askers)."""

    def __init__(self) -> None:
        self._limits: dict[str, tuple[LimitRow, dict[str, float], dict[str, float]]] = {}
        self._lock = threading.Lock()

    def set_limit(self, name: str, concurrency: int | None, rate: float | None, per: float, burst: int) -> None:
        with self._lock:
            found = self._limits.get(name)
            if found is None:
                self._limits[name] = (LimitRow(concurrency, rate, per, burst), {}, {})
                return
            row = found[0]
            row.concurrency, row.rate, row.per, row.burst = concurrency, rate, per, burst

    def get_limits(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        now = _clock.monotonic()
        with self._lock:
            wanted = list(self._limits) if names is None else [name for name in names if name in self._limits]
            return {name: LimitRules.status(*self._limits[name], now) for name in sorted(wanted)}

    def pause_limit(self, name: str, paused: bool) -> bool:
        with self._lock:
            found = self._limits.get(name)
            if found is not None:
                found[0].paused = paused
            return found is not None

    def delete_limit(self, name: str) -> bool:
        with self._lock:
            return self._limits.pop(name, None) is not None

    def acquire_limit(self, name: str, holder: str, ttl: float) -> float | None:
        with self._lock:
            found = self._limits.get(name)
            if found is None:
                return None
            return LimitRules.acquire(*found, holder, _clock.monotonic(), ttl)

    def renew_limit(self, name: str, holders: Sequence[str], ttl: float) -> set[str]:
        with self._lock:
            found = self._limits.get(name)
            return set() if found is None else LimitRules.renew(found[1], found[2], holders, _clock.monotonic(), ttl)

    def release_limit(self, name: str, holders: Sequence[str]) -> None:
        with self._lock:
            found = self._limits.get(name)
            if found is not None:
                for holder in holders:
                    found[1].pop(holder, None)
                    found[2].pop(holder, None)
