"""Pausing the cyclic garbage collector while Cascade builds and plans a large graph.

CPython starts a collection every 700 container allocations, and every so often a full
one that walks every object in the process. Building and planning a graph of N nodes
allocates several containers per node, all of them still alive, so with the collector on
that work pays for dozens of collections that find nothing to free (a quarter of a warm
rerun of 10,000 cached tasks; see docs/benchmarks.md). Mercurial's ``util.nogc`` pauses
it for the same reason.

The switch is process-wide: while one run builds its graph or computes its cache keys,
tasks of other runs in other threads allocate with collection deferred (not lost: it
resumes when the block ends). So only pure computation runs paused, never I/O: a slow
backend cannot hold the collector off.
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
