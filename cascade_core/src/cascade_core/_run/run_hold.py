"""Holding a run: one driver at a time unless drivers share it (``leases=True``).

The driver claims the run lease before it reads or writes anything of the run, names itself
in the run info (``driver``, ``driver_started``, ``driver_token``, ``lease_expires``, refreshed
by the heartbeat) and releases the lease on every way out; only a driver that dies leaves it
to expire. A driver of this machine that died is found at once by its process
(``_process.gone``) and its run taken over without waiting. docs/backends.md, "Leases" and
"After a crash", has the design.
"""

from __future__ import annotations

import time
from typing import Any

from .._errors import BackendError
from .._store.leases import (
    RUN_LEASE,
    RUN_SLOTS,
    SHARED_OWNER,
    RunLease,
    free_abandoned_share,
    lease_holders,
    refusal,
    release_leftovers,
    supports_leases,
)
from .._store.process import driver_name, gone
from .._store.protocols import LEASE_METHODS
from .._times import stamp
from .records import log

# (state label, run id) -> run-lease names a driver of this process could not release on its way out.
_UNRELEASED: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}


class RunHold:
    """The run lease of one driver of one run (None inside when the state cannot hold leases)."""

    def __init__(self, state: Any, state_label: str, run_id: str, owner: str, ttl: float, shared: bool) -> None:
        self.state = state
        self.owner = owner
        self.key = (state_label, run_id)
        self.run_id = run_id
        self.ttl = ttl
        if not supports_leases(state):
            if shared:
                raise BackendError(
                    f"leases=True needs a state backend with the Leases capability ({', '.join(LEASE_METHODS)}), "
                    f"which {state_label} lacks: use one that has it (sqlite, redis) or drop leases=True"
                )
            self.lease: RunLease | None = None  # the engine cannot know of other drivers (docs/backends.md)
        else:
            self.lease = RunLease(state, owner, ttl, shared, self._heartbeat)

    def hold(self) -> dict[str, str]:
        """Claim the run lease, or raise RunInUseError naming the holder; return the run info naming this driver."""
        info = {"driver": driver_name(), "driver_started": stamp(time.time())}
        if self.lease is None:
            return info
        leftovers = _UNRELEASED.pop(self.key, None)
        if leftovers:
            release_leftovers(self.state, leftovers)
        holder = self.lease.acquire()
        if holder is not None and self._take_over():
            holder = self.lease.acquire()
        elif holder is None and self.lease.shared:  # the slots of sharing drivers that died go now
            self._take_over()
        if holder is not None:
            lease, self.lease = self.lease, None
            lease.close()
            raise refusal(self.run_id, self.state.get_run_info(), lease.shared, holder)
        info["lease_expires"] = stamp(time.time() + self.ttl)  # no sooner than the store's expiry
        # Who holds the run exclusively, for a later driver and `cascade runs` to tell if it died.
        info["driver_token"] = "" if self.lease.shared else self.owner
        return info

    def _take_over(self) -> bool:
        """Free the run of the drivers of this machine that died holding it; whether any did."""
        state = self.state
        held = lease_holders(state, [RUN_LEASE, *RUN_SLOTS])
        if held is None:  # without LeaseHolders, the run info names the last exclusive holder
            token = state.get_run_info().get("driver_token")
            held = {RUN_LEASE: token} if token else {}
        dead = {name: holder for name, owner in held.items() if (holder := gone(owner)) is not None}
        if not dead:
            return False
        for name in dead:  # token-checked: a live newcomer's lease is left alone
            state.release_leases([name], held[name])
        if held.get(RUN_LEASE) == SHARED_OWNER:
            free_abandoned_share(state, self.ttl)
        pids = sorted({holder.pid for holder in dead.values()})
        listed = ", ".join(map(str, pids))
        who = f"its last driver (pid {listed}) is" if len(pids) == 1 else f"its drivers (pids {listed}) are"
        log.warning("run %s: %s gone; resuming", self.run_id, who)
        return True

    def _heartbeat(self, expires: float) -> None:
        """After each renewal of the run lease: say until when it holds (`cascade runs` tells a dead driver by it)."""
        self.state.set_run_info({"lease_expires": stamp(expires)})

    def release(self) -> None:
        if self.lease is not None:
            self.lease.close()
            if self.lease.unreleased:  # the store failed: the next driver of this run here frees them
                _UNRELEASED[self.key] = self.lease.unreleased
            self.lease = None
