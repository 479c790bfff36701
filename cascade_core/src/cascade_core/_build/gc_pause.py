"""Pausing the cyclic garbage collector while Cascade builds and plans a large graph.

CPython starts a collection every 700 container allocations, and every so often a full
one that walks every object in the process. Building and planning a graph of N nodes
allocates several containers per node, all of them still alive, so with the collector on
that work pays for dozens of collections that find nothing to free (a quarter of a warm
rerun of 10,000 cached tasks; see docs/benchmarks.md). Mercurial's ``util.nogc`` pauses
it for the same reason.

A run pauses it from building its graph until its first task starts (``PausedCollection``
in ``_engine``): a warm rerun or a finished resume never resumes it before the end, and
frees what it allocated first, so the collector has nothing of the run to walk. That span
includes the run's first backend calls (result ids, the cache lookup), each bounded by its
backend's timeout. The switch is process-wide: tasks of other runs in other threads
allocate with collection deferred meanwhile (not lost: it resumes when the run's pause ends).
Other pauses (``collection_paused``) cover pure computation only.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause automatic collection for the block, if it is on; objects are collected as usual afterwards."""
    if not gc.isenabled():  # paused by someone else: leave it to them
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class PausedCollection:
    """Pause automatic collection until :meth:`resume` or the end of the block, if it is on."""

    def __enter__(self) -> PausedCollection:
        self.paused = gc.isenabled()  # paused by someone else: leave it to them
        if self.paused:
            gc.disable()
        return self

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            gc.enable()

    def __exit__(self, *exc: object) -> None:
        self.resume()
