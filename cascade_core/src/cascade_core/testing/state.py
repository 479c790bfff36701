"""What a process keeps between runs, forgotten for tests: ``reset_process_state()``.

A ``memory://`` store, a blob store opened by URI or a provider registered at runtime outlives
the run that made it, as it should in a long-lived process; between tests it leaks state from
one test into the next. Plugin authors call these from their own fixtures::

    @pytest.fixture(autouse=True)
    def _fresh_process():
        with isolated_process_state():
            yield
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from . import clock


def reset_process_state() -> None:
    """Forget every ``memory://`` state store, cache and blob store, every blob store opened by
    URI, every provider loaded so far (they load again on next use), and a clock left frozen."""
    from .._plugins.registry import registry
    from .._store import blob_refs
    from ..backends import memory
    from ..blobs import memory as blob_memory

    # Private to their modules; reaching in from one place keeps tests out of them.
    memory._STATE_STORES.clear()
    memory._CACHES.clear()
    with blob_refs._LOCK:
        blob_refs._OPEN.clear()
    blob_memory._STORES.clear()
    registry._loaded.clear()
    clock.unfreeze()


@contextmanager
def isolated_process_state() -> Iterator[None]:
    """Reset the process state before and after the block, and undo the block's runtime provider
    registrations (``register_backend``), keeping the ones made before it."""
    from .._plugins.registry import registry

    reset_process_state()
    before = dict(registry._runtime)
    try:
        yield
    finally:
        with registry._lock:
            registry._runtime.clear()
            registry._runtime.update(before)
        reset_process_state()
