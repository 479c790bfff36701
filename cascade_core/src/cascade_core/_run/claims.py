"""Claims before running: node leases (several drivers of one run id run each task once) and
cache locks (several runs needing one cache entry compute it once). docs/backends.md, "Leases"."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .._store.blob_refs import BlobError
from .._store.codec import state_key
from .._store.leases import LeaseKeeper, lease_holders, new_owner, supports_leases
from .._store.process import gone
from .cache_lookup import CacheLookup
from .context import RunContext
from .plan import load_result
from .records import RunRecords, log


class Claims:
    """The leases one driver holds for one run, and the nodes waiting on someone else's.

    ``release(indexes)`` is the scheduler's: it makes the downstream of finished nodes ready.
    """

    def __init__(
        self,
        ctx: RunContext,
        records: RunRecords,
        lookup: CacheLookup,
        release: Callable[[list[int]], None],
        *,
        leases: bool,
        lease_ttl: float,
        owner: str | None = None,
        guard: Callable[[Any], Any] | None = None,
    ) -> None:
        self.ctx = ctx
        self.records = records
        self.lookup = lookup
        self.release = release
        owner = owner or new_owner()
        nodes = ctx.nodes
        guard = guard or _as_is  # the backends as the lease keepers call them (Availability.guard)
        self.node_leases = (
            LeaseKeeper(guard(ctx.state), owner, lease_ttl, "node") if leases and supports_leases(ctx.state) else None
        )
        self.cache_locks = (
            LeaseKeeper(guard(ctx.cache), owner, lease_ttl, "cache")
            if supports_leases(ctx.cache) and any(n.task.cache_lock and n.task.cache_policy for n in nodes)
            else None
        )
        self.waiting: dict[int, str] = {}  # node index -> "node" (another driver) or "cache" (another run)
        self.lost: set[int] = set()  # nodes whose stored result names a missing or corrupt blob (warned once)
        self.next_liveness_check = 0.0  # time.monotonic() of the next look for dead holders of waited-on leases

    @property
    def active(self) -> bool:
        """Whether nodes must be claimed before they run."""
        return self.node_leases is not None or self.cache_locks is not None

    def claim(self, batch: list[int]) -> list[int]:
        """The nodes of ``batch`` this driver may run now; the others wait for whoever holds them."""
        ctx = self.ctx
        if self.node_leases is not None and batch:
            ids = {ctx.nodes[index].id: index for index in batch}
            held = self.node_leases.acquire(ids)
            for node_id, index in ids.items():
                if node_id not in held:
                    self.waiting[index] = "node"
            # Another driver may have finished a node between our last read and the claim.
            done = self.take_stored({node_id: ids[node_id] for node_id in held})
            if done:
                self.node_leases.release([ctx.nodes[index].id for index in done])
            batch = [index for index in batch if index not in self.waiting and index not in done]
        if self.cache_locks is not None and batch:
            keyed: dict[str, list[int]] = {}
            for index in batch:
                key = ctx.keys[index]
                if key is not None and ctx.nodes[index].task.cache_lock:
                    keyed.setdefault(key, []).append(index)
            if keyed:
                held = self.cache_locks.acquire(keyed)
                for key, indexes in keyed.items():
                    # Nodes of this run sharing a key: the first computes it, the others wait for it.
                    waiting = indexes if key not in held else indexes[1:]
                    for index in waiting:
                        self.waiting[index] = "cache"
                # The entry may have been written between our lookup and the lock.
                hits = self.take_cached({key: keyed[key] for key in held})
                if hits:
                    self.cache_locks.release([key for key in held if keyed[key][0] in hits])
                    for index in hits:
                        self.waiting.pop(index, None)
                batch = [index for index in batch if index not in self.waiting and index not in hits]
        return batch

    def take_stored(self, ids: dict[str, int]) -> list[int]:
        """Load results another driver stored for these nodes; mark them done and release downstream.

        A result stored by blob reference, when the executor's workers read blobs (``hold``), is
        not read here: it is handed to the executor as the reference (as on resume, _plan.load_result).
        """
        if not ids:
            return []
        ctx = self.ctx
        found = ctx.state.get_results(list(ids))
        finished = []
        for node_id, payload in found.items():
            index = ids[node_id]
            key = state_key(ctx.run_id, node_id)
            try:
                ctx.results[index] = load_result(ctx, key, payload, self.lookup.hold)
            except BlobError as exc:
                # As on resume (_plan.load_stored): the node is not done and runs again (here,
                # once this driver holds its lease), overwriting the result it could not read.
                if index not in self.lost:
                    self.lost.add(index)
                    task = ctx.nodes[index].task.name
                    log.warning("stored result of task %s (node %s) is lost: %s; it runs again", task, node_id, exc)
                continue
            ctx.table.finish(index, "by_other_drivers")
            ctx.table.announce_skip(index, "done by another driver")
            finished.append(index)
        self.release(finished)
        return finished

    def take_cached(self, keys: dict[str, list[int]]) -> list[int]:
        """Take cache entries that appeared for these nodes; mark them done and release downstream."""
        hits = self.lookup.take_cached(keys)
        if hits:
            if self.node_leases is not None:  # served from the cache: the node's claim is done
                self.node_leases.release([self.ctx.nodes[index].id for index in hits])
            self.release(hits)
        return hits

    def poll_waiting(self, free: int | None = None) -> list[int]:
        """Take results that appeared for waiting nodes; claim (at most ``free`` of) the ones whose holder went away."""
        ctx = self.ctx
        by_node = [index for index, kind in self.waiting.items() if kind == "node"]
        by_cache = [index for index, kind in self.waiting.items() if kind == "cache"]
        if time.monotonic() >= self.next_liveness_check:
            self.next_liveness_check = time.monotonic() + LIVENESS_INTERVAL
            free_dead_holders(self.node_leases, [ctx.nodes[index].id for index in by_node])
            free_dead_holders(self.cache_locks, list({key for index in by_cache if (key := ctx.keys[index])}))
        retry: list[int] = []
        if by_node:
            for index in self.take_stored({ctx.nodes[index].id: index for index in by_node}):
                del self.waiting[index]
            retry += [index for index in by_node if index in self.waiting]
        if by_cache:
            keyed: dict[str, list[int]] = {}
            for index in by_cache:
                keyed.setdefault(ctx.keys[index], []).append(index)  # type: ignore[arg-type]
            for index in self.take_cached(keyed):
                del self.waiting[index]
            retry += [index for index in by_cache if index in self.waiting]
        if free is not None:
            retry = retry[: max(free, 0)]  # the others stay waiting until this driver can start them
        if not retry:
            return []
        for index in retry:
            del self.waiting[index]
        return self.claim(retry)

    def finished(self, indexes: list[int]) -> None:
        """Release the claims of nodes whose outcome is stored (or failed)."""
        ctx = self.ctx
        if self.node_leases is not None:
            self.node_leases.release([ctx.nodes[index].id for index in indexes])
        if self.cache_locks is not None:
            self.cache_locks.release([key for key in (ctx.keys[index] for index in indexes) if key])

    def close(self) -> None:
        """Stop renewing and release every claim.

        A driver that exits (Ctrl-C, a cancelled arun, an error) releases everything it holds, so
        that a resume starts at once; only a driver that dies leaves its leases to expire.
        """
        if self.node_leases is not None:
            self.node_leases.close()
        if self.cache_locks is not None:
            self.cache_locks.close()
        self.release = _release_nothing  # it was the scheduler's bound method: no reference cycle is left


def _as_is(backend: Any) -> Any:
    return backend


def _release_nothing(indexes: list[int]) -> None:
    """What the claims of a finished run release into: nothing."""


LIVENESS_INTERVAL = 1.0  # seconds between looks for crashed holders of the leases a driver waits on


def free_dead_holders(keeper: LeaseKeeper | None, names: Sequence[str]) -> None:
    """Release the leases among ``names`` that crashed drivers of this machine hold (docs/backends.md,
    "After a crash"); needs the backend's LeaseHolders capability, else they expire as before."""
    held = lease_holders(keeper.backend, names) if keeper is not None else None
    if keeper is None or not held:
        return
    dead: dict[str, tuple[int, list[str]]] = {}  # owner -> (its pid, the names it held)
    for name, owner in held.items():
        holder = gone(owner)
        if holder is not None:
            dead.setdefault(owner, (holder.pid, []))[1].append(name)
    for owner, (pid, names_held) in dead.items():
        keeper.backend.release_leases(names_held, owner)  # token-checked: nothing a live driver holds
        log.warning("freed %d %s lease(s) of driver pid %d, which is gone", len(names_held), keeper.label, pid)
