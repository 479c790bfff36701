"""Holding a run: one driver at a time unless drivers share it (``leases=True``).

The driver claims the run lease before it reads or writes anything of the run, names itself
in the run info (``driver``, ``driver_started``, ``lease_expires``, refreshed by the heartbeat)
and releases the lease on every way out; only a driver that dies leaves it to expire.
docs/backends.md, "Leases", has the design.
"""

from __future__ import annotations

import time
from typing import Any

from ._errors import BackendError
from ._leases import RunLease, refusal, release_leftovers, supports_leases
from ._protocols import LEASE_METHODS
from ._records import driver_name, stamp

# (state label, run id) -> run-lease names a driver of this process could not release on its way out.
_UNRELEASED: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}


class RunHold:
    """The run lease of one driver of one run (None inside when the state cannot hold leases)."""

    def __init__(self, state: Any, state_label: str, run_id: str, owner: str, ttl: float, shared: bool) -> None:
        self.state = state
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
        if holder is not None:
            lease, self.lease = self.lease, None
            lease.close()
            raise refusal(self.run_id, self.state.get_run_info(), lease.shared, holder)
        info["lease_expires"] = stamp(time.time() + self.ttl)  # no sooner than the store's expiry
        return info

    def _heartbeat(self, expires: float) -> None:
        """After each renewal of the run lease: say until when it holds (`cascade runs` tells a dead driver by it)."""
        self.state.set_run_info({"lease_expires": stamp(expires)})

    def release(self) -> None:
        if self.lease is not None:
            self.lease.close()
            if self.lease.unreleased:  # the store failed: the next driver of this run here frees them
                _UNRELEASED[self.key] = self.lease.unreleased
            self.lease = None
