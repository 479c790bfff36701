"""The gate the scheduler asks before it starts an attempt, and tells when the attempt ended.

Two kinds of limits (docs/concepts.md, "Limits"): the run's own ``resources`` (totals given to
``run()``, counted in this process) and named limits kept in the state store (``limits=`` of a
task; the store's LimitStore capability, shared by every driver using it). An attempt starts
only when its resources fit and it holds a slot of every limit it names; otherwise it waits
here, and the scheduler asks again when :meth:`Gate.next_in` says. The slots of named limits
are _run/limit_slots's: leases renewed with the run's other leases, handed over between this
driver's attempts for a moment, freed when the attempt ends.

Asking costs one round trip per limit: a node waiting behind another for the same limit does
not ask until the store's hint (the rate's next token, or a short poll for a slot) has passed,
or a slot of this driver was freed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._errors import LimitError
from .._store.limits import LimitStore, limit_store_of
from .limit_slots import LimitSlots


class Gate:
    """Admission of one run's attempts: resources counted here, named limits asked of the store."""

    @classmethod
    def of(
        cls, ctx: Any, candidates: Sequence[Any], label: str, totals: Mapping[str, float] | None, owner: str, ttl: float
    ) -> Gate | None:
        """The gate of a run whose tasks name limits or resources, or whose maps and routers expand
        into such tasks; None when none does (no cost)."""
        if not any(_limited(node.task, node.lazy) for node in ctx.nodes):
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
        self.slots = None if store is None else LimitSlots(store, owner, ttl, ctx.run_id)
        self.waiting: dict[int, str] = {}  # node index -> what it waits on ("limits", "resources"), in order
        self.since: dict[int, float] = {}  # node index -> when it started waiting
        self.waited = {"limits": 0.0, "resources": 0.0}  # seconds the run's tasks spent waiting, summed
        self.started: set[int] = set()  # node indexes whose attempt holds resources now
        self.checked: set[Any] = set()  # the tasks whose limits and resources were checked

    # -- before the run ------------------------------------------------------------

    def check(self, must_run: bytearray) -> None:
        """Fail the plan, in one line, on a limit nothing configured or a resource the run lacks."""
        self._check([node.task for index, node in enumerate(self.nodes) if must_run[index]])

    def _check(self, tasks: Iterable[Any]) -> None:
        needed: dict[str, str] = {}  # limit -> a task naming it
        for task in tasks:
            self.checked.add(task)
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
        if self.slots is not None:  # what a handover needs to know, fresh
            self.slots.settings.update(configured)
            self.slots.looked = time.monotonic()

    # -- during the run ------------------------------------------------------------

    def admit(self, index: int) -> bool:
        """Whether node ``index`` may start now; if not, it waits here until :meth:`poll` returns it."""
        task = self.nodes[index].task
        if task not in self.checked:  # a node a map, a router or a returned graph added during the run
            self._check([task])
        now = time.monotonic()
        if task.resources and not self._fits(task.resources, self.used):
            self._wait(index, "resources", now)
            return False
        if task.limits:
            assert self.slots is not None  # check() made sure
            if not self.slots.take(index, task.limits, now):
                self._wait(index, "limits", now)
                return False
        for name, amount in task.resources.items():
            self.used[name] += amount
        self.started.add(index)
        self.waiting.pop(index, None)
        since = self.since.pop(index, None)
        if since is not None:
            self.waited["limits" if task.limits else "resources"] += now - since
        return True

    def _fits(self, needs: Mapping[str, float], used: Mapping[str, float]) -> bool:
        return all(used[name] + amount <= self.totals[name] + 1e-9 for name, amount in needs.items())

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
            if task.limits and self.slots is not None and self.slots.waits(task.limits, now):
                continue
            if task.resources:
                if not self._fits(task.resources, used):
                    continue
                for name, amount in task.resources.items():
                    used[name] += amount
            due.append(index)
        for index in due:
            del self.waiting[index]
        return due

    def next_in(self) -> float | None:
        """Seconds until some waiting node is worth asking again; None: only a finished attempt helps."""
        if self.slots is None:
            return None
        times = [t for index in self.waiting for t in self.slots.hint(self.nodes[index].task.limits)]
        return None if not times else max(0.0, min(times) - time.monotonic())

    def sooner(self, seconds: float) -> float:
        """``seconds``, or less when a waiting node is worth asking again before that."""
        hint = self.next_in() if self.waiting else None
        return seconds if hint is None else min(seconds, hint)

    def finished(self, indexes: Iterable[int]) -> None:
        """The attempts of ``indexes`` ended: their slots and resources are free (or kept for a handover)."""
        now = time.monotonic()
        for index in indexes:
            if index in self.started:
                self.started.discard(index)
                for name, amount in self.nodes[index].task.resources.items():
                    self.used[name] -= amount
            if self.slots is not None:
                self.slots.finished(index, now)

    def flush(self) -> None:
        """The scheduler is about to wait: free the slots no attempt took over."""
        if self.slots is not None:
            self.slots.flush()

    def close(self) -> None:
        """The run ends: give up every slot and waiting mark, and note the time spent waiting."""
        now = time.monotonic()
        for index, why in self.waiting.items():
            self.waited[why] += now - self.since.get(index, now)
        if self.slots is not None:
            self.slots.close()

    def info(self) -> dict[str, str]:
        """The run info this driver adds: seconds its tasks waited on limits and on resources."""
        return {f"waited_{why}_s": f"{seconds:.3f}" for why, seconds in self.waited.items()}


def _limited(task: Any, lazy: Any = None) -> bool:
    """Whether ``task`` names limits or resources, or is a map or router that expands into such tasks."""
    if task.limits or task.resources:
        return True
    if task.kind == "map":
        return _limited(task.mapped)
    if task.kind == "router" and lazy is not None:
        return any(_limited(route.task, route) for route in lazy.kwargs["routes"].reachable())
    return False


def refuse_ungated(returner: str, added: Iterable[Any]) -> None:
    """A run without a gate (its graph named no limit or resource) cannot limit the tasks of a
    graph a task returned: LimitError when one of ``added`` names limits or resources."""
    for node in added:
        if _limited(node.task, node.lazy):
            raise LimitError(
                f"task {returner!r} returned a graph whose task {node.task.name!r} names limits or resources, "
                "which a run applies only when its own graph names one: name them on a task of the graph "
                "given to run() (or map over that task) instead"
            )


def checked_totals(resources: Any) -> dict[str, float]:
    """``run(resources=...)``: resource name -> a finite total greater than 0."""
    from .._build.task_options import checked_amounts

    return {} if resources is None else checked_amounts("run()", resources)
