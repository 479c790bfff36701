"""Leases held by one run: claimed in batches, renewed in the background, released when done.

Used for three things (docs/backends.md, "Leases"): the run lease on the state backend, so
that one driver at a time runs a run id unless the drivers share it; node leases on the state
backend, so that drivers sharing a run id run each task once; and cache locks on the cache
backend, so that concurrent runs needing one cache entry compute it once (no dogpile).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .. import _clock
from .._errors import RunInUseError
from .._times import parse_time
from .process import new_owner
from .protocols import LEASE_METHODS, missing_methods

log = logging.getLogger("cascade")


def supports_leases(backend: Any) -> bool:
    return not missing_methods(backend, LEASE_METHODS)


class LeaseTableMixin:
    """The Leases (and LeaseHolders) methods of a backend, forwarded to ``self._lease_table()``: an
    object with ``acquire(names, owner, ttl)``, ``renew(names, owner, ttl)``, ``release(names, owner)``
    and ``holders(names)``."""

    def _lease_table(self) -> Any:
        raise NotImplementedError

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        return self._lease_table().acquire(names, owner, ttl)

    def renew_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        return self._lease_table().renew(names, owner, ttl)

    def release_leases(self, names: Sequence[str], owner: str) -> None:
        self._lease_table().release(names, owner)

    def lease_holders(self, names: Sequence[str]) -> dict[str, str]:
        holders = getattr(self._lease_table(), "holders", None)
        if holders is None:  # a table written before LeaseHolders: the capability is absent
            raise NotImplementedError("lease_holders")
        return holders(names)


def lease_holders(backend: Any, names: Sequence[str]) -> dict[str, str] | None:
    """``backend.lease_holders(names)``, or None when the backend lacks that capability."""
    holders = getattr(backend, "lease_holders", None)
    if not names or not callable(holders):
        return None
    try:
        return holders(names)
    except NotImplementedError:
        return None


class LeaseKeeper:
    """The leases one run holds on one backend, renewed every ``ttl / 3`` seconds."""

    def __init__(
        self, backend: Any, owner: str, ttl: float, label: str, on_renewed: Callable[[float], None] | None = None
    ) -> None:
        self.backend = backend
        self.owner = owner
        self.ttl = ttl
        self.label = label
        self.on_renewed = on_renewed  # called with the new wall-clock expiry after each renewal
        self.held: set[str] = set()
        self._lock = threading.Lock()
        self._renewing = threading.Lock()  # held while a renewal is under way
        self._closed = False
        self._scheduled = False

    def acquire(self, names: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return set()
        got = set(self.backend.acquire_leases(wanted, self.owner, self.ttl))
        self.hold(got)
        return got

    def hold(self, names: Iterable[str]) -> None:
        """Renew ``names`` from now on: leases taken by other means (a limit's slots, _run/admission)."""
        names = set(names)
        with self._lock:
            self.held |= names
        if names and not self._scheduled:
            self._scheduled = True
            _heartbeat().add(self)

    def release(self, names: Iterable[str]) -> None:
        with self._lock:
            mine = [name for name in names if name in self.held]
            self.held.difference_update(mine)
        if mine:
            self.backend.release_leases(mine, self.owner)

    def renew(self) -> None:
        """Renew every lease still held (called by the heartbeat, in a thread of its own)."""
        if not self._renewing.acquire(blocking=False):
            return  # the last renewal is still under way
        try:
            if self._closed:
                return
            with self._lock:
                names = list(self.held)
            if not names:
                return
            try:
                kept = set(self.backend.renew_leases(names, self.owner, self.ttl))
                if kept and self.on_renewed is not None:
                    self.on_renewed(_clock.wall() + self.ttl)  # no sooner than the store's expiry
            except Exception as exc:  # the next attempt may succeed
                log.warning("could not renew %s leases: %s", self.label, exc)
                return
            with self._lock:
                # Names released while the renewal was under way are not lost.
                lost = (set(names) - kept) & self.held
                self.held -= lost
            if lost:
                log.warning(
                    "lost %d %s lease(s) (expired before renewal); another driver may redo them", len(lost), self.label
                )
        finally:
            self._renewing.release()

    def close(self, keep: Iterable[str] = ()) -> list[str]:
        """Stop renewing and release everything still held, except ``keep`` (left to expire).

        Return the names it could not release (the store failed): they expire by themselves.
        """
        if self._scheduled:
            _heartbeat().remove(self)
        got = self._renewing.acquire(timeout=5)  # let a renewal under way finish first
        self._closed = True
        if got:
            self._renewing.release()
        kept = set(keep)
        with self._lock:
            names = [name for name in self.held if name not in kept]
            self.held.clear()
        if names:
            try:
                self.backend.release_leases(names, self.owner)
            except Exception as exc:  # they expire on their own
                log.warning("could not release %s leases (they expire by themselves): %s", self.label, exc)
                return names
        return []


class _Heartbeat:
    """Renews the leases of every LeaseKeeper of this process when due, every ``ttl / 3`` seconds.

    One thread waits for the next keeper due; each renewal runs in a short-lived thread of its
    own, so a store that stops answering delays no other run's leases. A run that ends sooner
    than ``ttl / 3`` (most do) starts no thread and wakes none.
    """

    IDLE = 1.0  # seconds between looks when no keeper is due sooner
    IDLE_LOOKS = 60  # then the thread ends, until the next keeper comes

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[LeaseKeeper, float] = {}  # keeper -> _clock.monotonic() of its next renewal
        self._next = 0.0  # when the thread wakes up next
        self._running = False
        self._waiting = threading.Event()  # set once the thread waits

    def add(self, keeper: LeaseKeeper) -> None:
        with self._cond:
            at = self._due[keeper] = _clock.monotonic() + keeper.ttl / 3
            started = not self._running
            if started:
                self._running = True
                self._next = at
                self._waiting.clear()
                threading.Thread(target=self._run, name="cascade-leases", daemon=True).start()
            elif at < self._next:
                self._cond.notify()
        if started:  # let it settle into its wait now, not in the middle of the run it serves
            self._waiting.wait(1)
            time.sleep(0.001)

    def remove(self, keeper: LeaseKeeper) -> None:
        with self._cond:
            self._due.pop(keeper, None)

    def _run(self) -> None:
        idle = 0
        while True:
            with self._cond:
                now = _clock.monotonic()
                due = [keeper for keeper, at in self._due.items() if at <= now]
                for keeper in due:
                    self._due[keeper] = now + keeper.ttl / 3
                if not due:
                    idle = 0 if self._due else idle + 1
                    if idle > self.IDLE_LOOKS:
                        self._running = False
                        return
                    self._next = min([now + self.IDLE, *self._due.values()])
                    self._waiting.set()
                    self._cond.wait(self._next - now)
                    continue
            for keeper in due:
                threading.Thread(target=keeper.renew, name="cascade-lease-renewal", daemon=True).start()


_HEARTBEAT: _Heartbeat | None = None
_HEARTBEAT_LOCK = threading.Lock()


def _heartbeat() -> _Heartbeat:
    global _HEARTBEAT
    with _HEARTBEAT_LOCK:
        if _HEARTBEAT is None:
            _HEARTBEAT = _Heartbeat()
        return _HEARTBEAT


def _forget_heartbeat() -> None:
    # A forked child has none of its parent's threads (and maybe a lock taken): start afresh.
    global _HEARTBEAT, _HEARTBEAT_LOCK
    _HEARTBEAT, _HEARTBEAT_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_heartbeat)


# The run lease, in the run's lease space. No node id (a hex digest) starts with "~".
RUN_LEASE = "~run"
SHARED_OWNER = "~shared"  # the owner token of a run lease held by drivers that share the run
RUN_SLOTS = tuple(f"~driver/{slot}" for slot in range(64))  # one per live sharing driver


class RunLease:
    """Who drives a run: one exclusive driver, or any number (up to 64) of sharing ones.

    An exclusive driver (the default) holds ``~run`` under its own owner token. Sharing drivers
    (``leases=True``) hold it together under the shared token ``~shared``, each renewing it,
    and each also holds a slot ``~driver/<n>`` of its own. So an exclusive driver is refused
    while any sharing driver lives, a sharing driver is refused while an exclusive one holds the
    run, and sharing drivers never refuse one another. On its way out a sharing driver frees
    ``~run`` only when it can claim every slot, that is when no other sharing driver is left.
    """

    def __init__(
        self, backend: Any, owner: str, ttl: float, shared: bool, on_renewed: Callable[[float], None] | None = None
    ) -> None:
        self.keeper = LeaseKeeper(backend, SHARED_OWNER if shared else owner, ttl, "run", on_renewed)
        self.owner = owner
        self.shared = shared
        self.slot: LeaseKeeper | None = None
        self.unreleased: list[tuple[str, list[str]]] = []  # (owner, names) close() could not release

    def acquire(self) -> str | None:
        """Claim the run; None when held, else who holds it: "exclusive", "shared" or "full"."""
        keeper = self.keeper
        if not self.shared:
            if keeper.acquire([RUN_LEASE]):
                return None
            # Held by sharing drivers when one of them holds a slot (a claim changes no lease held).
            probe, backend = new_owner(), keeper.backend
            free = set(backend.acquire_leases(list(RUN_SLOTS), probe, keeper.ttl))
            backend.release_leases(list(free), probe)
            return "exclusive" if len(free) == len(RUN_SLOTS) else "shared"
        self.slot = slot = LeaseKeeper(keeper.backend, self.owner, keeper.ttl, "run")
        holder = None
        for attempt in range(3):  # a sharing driver on its way out holds every slot for a moment
            if slot.acquire([random.choice(RUN_SLOTS)]) or _keep_one(slot, slot.acquire(RUN_SLOTS)):
                break
            time.sleep(0.05 * (attempt + 1))
        else:
            holder = "full"
        if holder is None and keeper.acquire([RUN_LEASE]):
            return None
        slot.close()
        self.slot = None
        return holder or "exclusive"

    def close(self) -> None:
        """Stop renewing and release the run (only as the last sharing driver, when shared)."""
        if self.slot is None:
            self._note(self.keeper, self.keeper.close())
            return
        self._note(self.slot, self.slot.close())
        backend, probe = self.keeper.backend, new_owner()
        try:
            # Claiming every slot tells that no other sharing driver is left; holding them while
            # the run lease is freed keeps a newcomer from joining a run about to be freed.
            got = set(backend.acquire_leases(list(RUN_SLOTS), probe, self.keeper.ttl))
        except Exception as exc:  # the store may be gone: the run lease expires by itself
            log.warning("could not release the run lease (it expires by itself): %s", exc)
            got = set()
        self._note(self.keeper, self.keeper.close(keep=() if len(got) == len(RUN_SLOTS) else [RUN_LEASE]))
        if got:
            with contextlib.suppress(Exception):  # they expire by themselves
                backend.release_leases(list(got), probe)

    def _note(self, keeper: LeaseKeeper, names: list[str]) -> None:
        if names:
            self.unreleased.append((keeper.owner, names))


def free_abandoned_share(backend: Any, ttl: float) -> bool:
    """Free a run lease held by sharing drivers none of whom holds a slot any more; whether it was.

    Holding every slot while the run lease is freed keeps a newcomer from joining meanwhile.
    """
    probe = new_owner()
    got = set(backend.acquire_leases(list(RUN_SLOTS), probe, ttl))
    try:
        if len(got) < len(RUN_SLOTS):
            return False
        backend.release_leases([RUN_LEASE], SHARED_OWNER)
        return True
    finally:
        if got:
            backend.release_leases(list(got), probe)


def release_leftovers(backend: Any, leftovers: list[tuple[str, list[str]]]) -> None:
    """Release what an earlier driver of this process could not (its store was down then)."""
    for owner, names in leftovers:
        with contextlib.suppress(Exception):  # still down, or already expired: they expire anyway
            backend.release_leases(names, owner)


def _keep_one(keeper: LeaseKeeper, got: set[str]) -> bool:
    """Keep one of the slots ``got``, release the others; whether there was one."""
    keeper.release(sorted(got)[1:])
    return bool(got)


def refusal(run_id: str, info: Mapping[str, str], shared: bool, holder_kind: str) -> RunInUseError:
    """The error of a driver refused a run, naming the holder from the run info it wrote.

    ``shared``: whether the refused driver shares; ``holder_kind``: what RunLease.acquire returned.
    """
    holder = info.get("driver") or "another driver"
    since = info.get("driver_started", "")
    who = f"{holder} (since {since})" if since else holder
    expires = info.get("lease_expires")
    died = ""
    if expires:
        moment = parse_time(expires)
        left = f"in {max(0.0, moment.timestamp() - _clock.wall()):.0f} s, " if moment is not None else ""
        died = f" (if it died, the run is free once its lease expires, {left}at {expires})"
    if holder_kind == "full":
        message = (
            f"run {run_id!r} is already shared by {len(RUN_SLOTS)} drivers started with leases=True "
            f"(latest: {who}), the most one run takes: wait for one of them to finish"
        )
    elif holder_kind == "shared":
        message = (
            f"run {run_id!r} is shared by drivers started with leases=True (latest: {who}): "
            "start this one with leases=True (cascade run --leases) to join them, or wait for them to finish"
        )
    elif shared:
        message = (
            f"run {run_id!r} is held by {who}, started without leases=True, so it does not share the run: "
            f"wait for it to finish, or restart every driver with leases=True (cascade run --leases){died}"
        )
    else:
        message = (
            f"run {run_id!r} is already being run by {who}: wait for it to finish, "
            f"or start every driver with leases=True (cascade run --leases) to share the work{died}"
        )
    return RunInUseError(message, run_id=run_id, holder=holder, since=since, shared=holder_kind != "exclusive")


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
