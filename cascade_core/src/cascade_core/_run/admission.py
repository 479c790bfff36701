"""The gate the scheduler asks before it starts an attempt, and tells when the attempt ended.

Two kinds of limits (docs/concepts.md, "Limits"): the run's own ``resources`` (totals given to
``run()``, counted in this process) and named limits kept in the state store (``limits=`` of a
task; the store's LimitStore capability, shared by every driver using it). An attempt starts
only when its resources fit and it holds a slot of every limit it names; otherwise it waits
here, and the scheduler asks again when :meth:`Gate.next_in` says. A limit's slot is a lease
under the run's owner token, renewed by the lease heartbeat and released when the attempt
ends, so a driver that dies frees its slots when their TTL runs out.

Asking costs one round trip per limit: a node waiting behind another for the same limit does
not ask until the store's hint (the rate's next token, or a short poll for a slot) has passed,
or a slot of this driver was freed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._errors import LimitError
from .._store.leases import LeaseKeeper
from .._store.limits import LimitStore, limit_store_of
from .records import log

MAX_POLL = 0.25  # seconds: the longest a driver goes without asking for a limit it waits on
_SEPARATOR = "\0"  # between a limit's name and a holder in the keeper's lease names


class _Slots:
    """A LimitStore seen as Leases, for the LeaseKeeper: a lease name is ``limit\\0holder``."""

    def __init__(self, store: LimitStore) -> None:
        self.store = store

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        raise NotImplementedError("slots are taken by Gate.admit")  # pragma: no cover

    def renew_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        kept: set[str] = set()
        for limit, holders in _by_limit(names).items():
            kept.update(f"{limit}{_SEPARATOR}{holder}" for holder in self.store.renew_limit(limit, holders, ttl))
        return kept

    def release_leases(self, names: Sequence[str], owner: str) -> None:
        for limit, holders in _by_limit(names).items():
            self.store.release_limit(limit, holders)


def _by_limit(names: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name in names:
        limit, holder = name.split(_SEPARATOR, 1)
        grouped.setdefault(limit, []).append(holder)
    return grouped


class Gate:
    """Admission of one run's attempts: resources counted here, named limits asked of the store."""

    @classmethod
    def of(
        cls, ctx: Any, candidates: Sequence[Any], label: str, totals: Mapping[str, float] | None, owner: str, ttl: float
    ) -> Gate | None:
        """The gate of a run whose tasks name limits or resources; None when none does (no cost)."""
        if not any(node.task.limits or node.task.resources for node in ctx.nodes):
            return None
        return cls(ctx, limit_store_of(*candidates), label, dict(totals or {}), owner, ttl)

    def __init__(
        self, ctx: Any, store: LimitStore | None, label: str, totals: dict[str, float], owner: str, ttl: float
    ) -> None:
        self.ctx = ctx
        self.nodes = ctx.nodes
        self.store = store
        self.label = label  # the state store as messages name it
        self.totals = totals
        self.used = dict.fromkeys(totals, 0.0)
        self.owner = owner
        self.ttl = ttl
        self.keeper = None if store is None else LeaseKeeper(_Slots(store), owner, ttl, "limit")
        self.holders: dict[int, str] = {}  # node index -> holder token of its current attempt
        self.held: dict[int, list[str]] = {}  # node index -> the limits it holds a slot of (it runs)
        self.waiting: dict[int, str] = {}  # node index -> what it waits on ("limits", "resources"), in order
        self.since: dict[int, float] = {}  # node index -> when it started waiting
        self.blocked: dict[str, float] = {}  # limit -> monotonic time before which asking is pointless
        self.waited = {"limits": 0.0, "resources": 0.0}  # seconds the run's tasks spent waiting, summed
        self.counter = itertools.count()
        self.gone: set[str] = set()  # limits deleted while the run went on (warned once)

    # -- before the run ------------------------------------------------------------

    def check(self, must_run: bytearray) -> None:
        """Fail the plan, in one line, on a limit nothing configured or a resource the run lacks."""
        needed: dict[str, str] = {}  # limit -> a task naming it
        for index, node in enumerate(self.nodes):
            if not must_run[index]:
                continue
            task = node.task
            for name in task.limits:
                needed.setdefault(name, task.name)
            for name, amount in task.resources.items():
                total = self.totals.get(name)
                if total is None:
                    raise LimitError(
                        f"task {task.name!r} needs resource {name!r}, which the run does not have: pass "
                        f"resources={{{name!r}: N}} to cs.run() (cascade run --resources {name}=N)"
                    )
                if amount > total:
                    raise LimitError(
                        f"task {task.name!r} needs {amount:g} of resource {name!r}, more than the run's {total:g}: "
                        "give the run more or the task less"
                    )
        if not needed:
            return
        if self.store is None:
            name, task = next(iter(needed.items()))
            raise LimitError(
                f"task {task!r} names limit {name!r}, but the state backend {self.label} keeps no limits: "
                "use a state backend that does (memory://, sqlite://, redis://)",
                limit=name,
            )
        configured = self.store.get_limits(sorted(needed))
        for name, task in needed.items():
            if name not in configured:
                raise LimitError(
                    f"task {task!r} names limit {name!r}, which is not set in {self.label}: set it with "
                    f"'cascade limits set {name} --concurrency N' (or --rate 10/s), or cs.set_limit()",
                    limit=name,
                )

    # -- during the run ------------------------------------------------------------

    def admit(self, index: int) -> bool:
        """Whether node ``index`` may start now; if not, it waits here until :meth:`poll` returns it."""
        task = self.nodes[index].task
        now = time.monotonic()
        if task.resources and not self._fits(task.resources):
            self._wait(index, "resources", now)
            return False
        taken = self._take(index, task.limits, now) if task.limits else []
        if taken is None:
            self._wait(index, "limits", now)
            return False
        self.held[index] = taken
        for name, amount in task.resources.items():
            self.used[name] += amount
        self.waiting.pop(index, None)
        since = self.since.pop(index, None)
        if since is not None:
            self.waited["limits" if task.limits else "resources"] += now - since
        return True

    def _fits(self, needs: Mapping[str, float]) -> bool:
        return all(self.used[name] + amount <= self.totals[name] + 1e-9 for name, amount in needs.items())

    def _take(self, index: int, limits: Sequence[str], now: float) -> list[str] | None:
        """The limits of ``limits`` node ``index`` holds a slot of now; None when one refused."""
        store, keeper = self.store, self.keeper
        assert store is not None and keeper is not None  # check() made sure
        holder = self.holders.get(index)
        if holder is None:
            node = self.nodes[index]
            holder = self.holders[index] = f"{self.owner}/{node.id[:16]}/{next(self.counter)}"
        elif any(self.blocked.get(name, 0.0) > now for name in limits):
            return None  # asked already; the store said to wait
        taken: list[str] = []
        for name in limits:
            wait = store.acquire_limit(name, holder, self.ttl)
            if wait is None:  # deleted since the plan: no limit any more
                if name not in self.gone:
                    self.gone.add(name)
                    log.warning(
                        "limit %s was deleted while run %s went on: its tasks start unlimited", name, self.ctx.run_id
                    )
                continue
            keeper.hold([f"{name}{_SEPARATOR}{holder}"])  # a slot, or a waiting mark: renewed until released
            if wait > 0:
                self.blocked[name] = now + min(wait, MAX_POLL)
                keeper.release([f"{limit}{_SEPARATOR}{holder}" for limit in taken])
                return None
            taken.append(name)
        return taken

    def _wait(self, index: int, why: str, now: float) -> None:
        self.waiting[index] = why
        self.since.setdefault(index, now)

    def poll(self) -> list[int]:
        """The waiting nodes worth asking again now (their limits' hints have passed, their
        resources fit), in the order they came."""
        now = time.monotonic()
        used = dict(self.used)
        due = []
        for index in self.waiting:
            task = self.nodes[index].task
            if any(self.blocked.get(name, 0.0) > now for name in task.limits):
                continue
            if task.resources:
                if not all(used[name] + amount <= self.totals[name] + 1e-9 for name, amount in task.resources.items()):
                    continue
                for name, amount in task.resources.items():
                    used[name] += amount
            due.append(index)
        for index in due:
            del self.waiting[index]
        return due

    def next_in(self) -> float | None:
        """Seconds until some waiting node is worth asking again; None: only a finished attempt helps."""
        now = time.monotonic()
        times = [self.blocked.get(name, 0.0) for index in self.waiting for name in self.nodes[index].task.limits]
        return None if not times else max(0.0, min(times) - now)

    def sooner(self, seconds: float) -> float:
        """``seconds``, or less when a waiting node is worth asking again before that."""
        hint = self.next_in() if self.waiting else None
        return seconds if hint is None else min(seconds, hint)

    def finished(self, indexes: Iterable[int]) -> None:
        """The attempts of ``indexes`` ended: free their slots (one round trip per limit) and resources."""
        for index in indexes:
            holder = self.holders.pop(index, None)
            task = self.nodes[index].task
            taken = self.held.pop(index, None)
            if taken is None:
                continue
            for name, amount in task.resources.items():
                self.used[name] -= amount
            if holder is not None and taken and self.keeper is not None:
                self.keeper.release([f"{name}{_SEPARATOR}{holder}" for name in taken])
                for name in taken:
                    self.blocked.pop(name, None)  # a slot of ours is free: the next waiter asks at once

    def close(self) -> None:
        """The run ends: give up every slot and waiting mark, and note the time spent waiting."""
        now = time.monotonic()
        for index, why in self.waiting.items():
            self.waited[why] += now - self.since.get(index, now)
        if self.keeper is not None:
            self.keeper.close()

    def info(self) -> dict[str, str]:
        """The run info this driver adds: seconds its tasks waited on limits and on resources."""
        return {f"waited_{why}_s": f"{seconds:.3f}" for why, seconds in self.waited.items()}


def checked_totals(resources: Any) -> dict[str, float]:
    """``run(resources=...)``: resource name -> a finite total greater than 0."""
    from .._build.task_options import checked_amounts

    return {} if resources is None else checked_amounts("run()", resources)
