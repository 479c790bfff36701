"""The clocks that lease expiry and cache TTLs read, replaceable in tests.

Call them as ``_clock.wall()`` and ``_clock.monotonic()`` (one module attribute per call, no
object in between): ``cascade_core.testing.clock`` swaps them to move time without sleeping.
Only this process sees a swapped clock; a store with a clock of its own (Redis) keeps it.
"""

from __future__ import annotations

import time

wall = time.time  # seconds since the epoch: expiries shared through a file (sqlite://)
monotonic = time.monotonic  # expiries kept in this process (memory://), heartbeats
