"""The slots of named limits one driver holds: taken from the store, renewed, handed over, freed.

Each slot is held under a holder token of its own (``<owner>/<n>``) and renewed by the lease
heartbeat with the run's other leases (a LeaseKeeper over :class:`_Slots`), so a driver that
dies frees its slots when their TTL runs out. Asking costs one round trip per limit.

Handover: when an attempt ends and another attempt of this driver naming the same limit starts
right after (a chain), the slot passes from one to the other without a round trip, for at most
``HANDOVER`` seconds after the store last granted it, and only for a limit without a rate (each
start must take a rate token) that was not paused when last looked at (every ``HANDOVER``
seconds). So a chain pays one round trip per ``HANDOVER`` instead of two per task, while a pause,
a lowered concurrency or a new rate reaches it within ``HANDOVER``. A slot not handed over is
freed before the scheduler next waits (:meth:`LimitSlots.flush`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from .._store.leases import LeaseKeeper
from .._store.limits import LimitStore
from .records import log

MAX_POLL = 0.25  # seconds: the longest a driver goes without asking for a limit it waits on
HANDOVER = 0.25  # seconds a granted slot may pass between this driver's attempts without asking
_SEPARATOR = "\0"  # between a limit's name and a holder in the keeper's lease names


class _Slots:
    """A LimitStore seen as Leases, for the LeaseKeeper: a lease name is ``limit\\0holder``."""

    def __init__(self, store: LimitStore) -> None:
        self.store = store

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        raise NotImplementedError("slots are taken by LimitSlots.take")  # pragma: no cover

    def renew_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        kept: set[str] = set()
        for limit, holders in _by_limit(names).items():
            kept.update(_lease(limit, holder) for holder in self.store.renew_limit(limit, holders, ttl))
        return kept

    def release_leases(self, names: Sequence[str], owner: str) -> None:
        for limit, holders in _by_limit(names).items():
            self.store.release_limit(limit, holders)


def _lease(limit: str, holder: str) -> str:
    return f"{limit}{_SEPARATOR}{holder}"


def _by_limit(names: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name in names:
        limit, holder = name.split(_SEPARATOR, 1)
        grouped.setdefault(limit, []).append(holder)
    return grouped


class LimitSlots:
    """The named-limit side of a run's gate (_run/admission)."""

    def __init__(self, store: LimitStore, owner: str, ttl: float, run_id: str) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self.run_id = run_id
        self.keeper = LeaseKeeper(_Slots(store), owner, ttl, "limit")
        self.counter = itertools.count()
        self.held: dict[int, list[tuple[str, str, float]]] = {}  # node index -> (limit, holder, granted at)
        self.asked: dict[int, dict[str, str]] = {}  # node index -> limit -> holder of its waiting mark
        self.spare: dict[str, list[tuple[str, float]]] = {}  # limit -> slots kept for a handover
        self.blocked: dict[str, float] = {}  # limit -> monotonic time before which asking is pointless
        self.settings: dict[str, dict[str, Any]] = {}  # as get_limits last said, for handovers
        self.looked = float("-inf")  # when
        self.gone: set[str] = set()  # limits deleted while the run went on (warned once)

    def waits(self, limits: Sequence[str], now: float) -> bool:
        """Whether asking for ``limits`` now is pointless (the store's last hint has not passed)."""
        spare = self.spare
        return any(self.blocked.get(name, 0.0) > now and not spare.get(name) for name in limits)

    def hint(self, limits: Iterable[str]) -> list[float]:
        return [self.blocked.get(name, 0.0) for name in limits]

    def take(self, index: int, limits: Sequence[str], now: float) -> bool:
        """A slot of every limit of ``limits`` for node ``index`` (in order); False, holding none, when one refused."""
        asked = self.asked.setdefault(index, {})
        if asked and self.waits(limits, now):
            return False  # asked already; the store said to wait
        taken: list[tuple[str, str, float]] = []
        for name in limits:
            slot = self._handover(name, now)
            if slot is not None:
                taken.append((name, *slot))
                continue
            holder = asked.get(name) or f"{self.owner}/{next(self.counter)}"
            wait = self.store.acquire_limit(name, holder, self.ttl)
            if wait is None:  # deleted since the plan: no limit any more
                if name not in self.gone:
                    self.gone.add(name)
                    log.warning(
                        "limit %s was deleted while run %s went on: its tasks start unlimited", name, self.run_id
                    )
                continue
            self.keeper.hold([_lease(name, holder)])  # a slot, or a waiting mark: renewed until released
            if wait > 0:
                asked[name] = holder
                self.blocked[name] = now + min(wait, MAX_POLL)
                self._free(taken, now)
                return False
            asked.pop(name, None)
            taken.append((name, holder, now))
        if asked:  # waiting marks of limits it then got by a handover
            self.keeper.release([_lease(name, holder) for name, holder in asked.items()])
        del self.asked[index]
        self.held[index] = taken
        return True

    def _handover(self, name: str, now: float) -> tuple[str, float] | None:
        """A slot of ``name`` a finished attempt of this driver left, when it may pass on; the
        slots that may not (too old, or the limit has a rate or is paused now) are freed here."""
        spare = self.spare.get(name)
        if not spare:
            return None
        if now - self.looked >= HANDOVER:
            self.settings = self.store.get_limits(sorted(set(self.spare) | set(self.settings)))
            self.looked = now
        limit = self.settings.get(name)
        passes = limit is not None and limit["rate"] is None and not limit["paused"]
        fresh = [slot for slot in spare if passes and now - slot[1] < HANDOVER]
        stale = [slot for slot in spare if slot not in fresh]
        self.spare[name] = fresh
        if stale:
            self.keeper.release([_lease(name, holder) for holder, _ in stale])
        return fresh.pop() if fresh else None

    def finished(self, index: int, now: float) -> None:
        """Node ``index``'s attempt ended: its slots are kept for a handover or freed."""
        asked = self.asked.pop(index, None)
        if asked:
            self.keeper.release([_lease(name, holder) for name, holder in asked.items()])
        held = self.held.pop(index, None)
        if held:
            self._free(held, now)

    def _free(self, slots: list[tuple[str, str, float]], now: float) -> None:
        freed = []
        for name, holder, granted in slots:
            self.blocked.pop(name, None)  # a slot of ours is free: the next waiter asks at once
            if now - granted < HANDOVER:
                self.spare.setdefault(name, []).append((holder, granted))
            else:
                freed.append(_lease(name, holder))
        if freed:
            self.keeper.release(freed)

    def flush(self) -> None:
        """Free the slots kept for a handover that none took (before the scheduler waits)."""
        if any(self.spare.values()):
            freed = [_lease(name, holder) for name, slots in self.spare.items() for holder, _ in slots]
            self.spare.clear()
            self.keeper.release(freed)

    def close(self) -> None:
        """Give up every slot and waiting mark."""
        self.spare.clear()
        self.keeper.close()
