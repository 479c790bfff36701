"""Leases held by one run: claimed in batches, renewed in the background, released when done.

Used for two things (docs/backends.md, "Leases"): node leases on the state backend, so that
several drivers of one run id run each task once, and cache locks on the cache backend, so
that concurrent runs needing one cache entry compute it once (no dogpile).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from ._protocols import LEASE_METHODS, missing_methods

log = logging.getLogger("cascade")


def supports_leases(backend: Any) -> bool:
    return not missing_methods(backend, LEASE_METHODS)


def new_owner() -> str:
    """A token unique to this driver: host, process and a random part."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(6).hex()}"


class LeaseTableMixin:
    """The Leases methods of a backend, forwarded to ``self._lease_table()``: an object with
    ``acquire(names, owner, ttl)``, ``renew(names, owner, ttl)`` and ``release(names, owner)``."""

    def _lease_table(self) -> Any:
        raise NotImplementedError

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        return self._lease_table().acquire(names, owner, ttl)

    def renew_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        return self._lease_table().renew(names, owner, ttl)

    def release_leases(self, names: Sequence[str], owner: str) -> None:
        self._lease_table().release(names, owner)


class LeaseKeeper:
    """The leases one run holds on one backend, renewed every ``ttl / 3`` seconds."""

    def __init__(self, backend: Any, owner: str, ttl: float, label: str) -> None:
        self.backend = backend
        self.owner = owner
        self.ttl = ttl
        self.label = label
        self.held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, names: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return set()
        got = set(self.backend.acquire_leases(wanted, self.owner, self.ttl))
        with self._lock:
            self.held |= got
        if got and self._thread is None:
            self._thread = threading.Thread(target=self._renew_forever, name="cascade-leases", daemon=True)
            self._thread.start()
        return got

    def release(self, names: Iterable[str]) -> None:
        with self._lock:
            mine = [name for name in names if name in self.held]
            self.held.difference_update(mine)
        if mine:
            self.backend.release_leases(mine, self.owner)

    def _renew_forever(self) -> None:
        interval = self.ttl / 3
        while not self._stop.wait(interval):
            with self._lock:
                names = list(self.held)
            if not names:
                continue
            try:
                kept = set(self.backend.renew_leases(names, self.owner, self.ttl))
            except Exception as exc:  # keep renewing: the next attempt may succeed
                log.warning("could not renew %s leases: %s", self.label, exc)
                continue
            with self._lock:
                # Names released while the renewal was under way are not lost.
                lost = (set(names) - kept) & self.held
                self.held -= lost
            if lost:
                log.warning(
                    "lost %d %s lease(s) (expired before renewal); another driver may redo them", len(lost), self.label
                )

    def close(self, keep: Iterable[str] = ()) -> None:
        """Stop renewing and release everything still held, except ``keep`` (left to expire)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        kept = set(keep)
        with self._lock:
            names = [name for name in self.held if name not in kept]
            self.held.clear()
        if names:
            try:
                self.backend.release_leases(names, self.owner)
            except Exception as exc:  # they expire on their own
                log.warning("could not release %s leases (they expire by themselves): %s", self.label, exc)


class Backoff:
    """Poll intervals for waiting on another driver: 20 ms doubling to 500 ms."""

    def __init__(self) -> None:
        self.delay = 0.02

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, 0.5)
        return delay

    def reset(self) -> None:
        self.delay = 0.02
