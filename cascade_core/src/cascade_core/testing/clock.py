"""Time that tests move: lease expiry and cache TTLs of ``memory://`` and ``sqlite://`` without sleeping.

>>> from cascade_core.testing.clock import frozen_clock
>>> with frozen_clock() as clock:
...     clock.advance(31)  # every lease and TTL of this process is now 31 s older

Inside ``frozen_clock()`` the clocks that the lease keeper, the memory backends and the sqlite
backends read stand still until ``advance()`` moves them. Only this process's view of time
changes: another process sharing a sqlite file keeps the real clock, and Redis keeps its
server's (tests of Redis expiry still wait, polling).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .. import _clock


class FrozenClock:
    """A clock that stands still until advanced; starts at the real clocks' readings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wall = time.time()
        self._monotonic = time.monotonic()

    def wall(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (not backward: a clock never runs back)."""
        if seconds < 0:
            raise ValueError(f"advance({seconds}): time moves forward only")
        with self._lock:
            self._wall += seconds
            self._monotonic += seconds


_ACTIVE: FrozenClock | None = None


@contextmanager
def frozen_clock() -> Iterator[FrozenClock]:
    """Stop this process's lease and TTL clocks for the block; ``advance()`` moves them."""
    global _ACTIVE
    if _ACTIVE is not None:
        raise RuntimeError("frozen_clock() is already active: advance() the clock it gave you")
    clock = _ACTIVE = FrozenClock()
    _clock.wall, _clock.monotonic = clock.wall, clock.monotonic
    try:
        yield clock
    finally:
        unfreeze()


def unfreeze() -> None:
    """The real clocks back (also what ``reset_process_state()`` does to a clock left frozen)."""
    global _ACTIVE
    _clock.wall, _clock.monotonic = time.time, time.monotonic
    _ACTIVE = None


def advance(seconds: float) -> None:
    """Advance the clock of the active ``frozen_clock()`` block."""
    if _ACTIVE is None:
        raise RuntimeError("advance() needs a frozen_clock() block around it")
    _ACTIVE.advance(seconds)
