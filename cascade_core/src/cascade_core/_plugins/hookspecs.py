"""Hookspecs that a backend provider (a ``cascade.backends`` entry point) implements.

A provider is a module, class or object with functions marked ``@cascade_core.hookimpl``::

    import cascade_core as cs

    @cs.hookimpl
    def cascade_state_backend(uri):      # -> Callable[[run_id], StateBackend]
        return lambda run_id: MyState(uri, run_id)

    @cs.hookimpl
    def cascade_cache_backend(uri):      # -> CacheBackend
        return MyCache(uri)

    @cs.hookimpl
    def cascade_executor(uri):           # -> Executor (submit, close, max_workers)
        return MyExecutor(uri)

    @cs.hookimpl
    def cascade_blob_store(uri):         # -> BlobStore (put, get, exists, delete, list_blobs, close)
        return MyBlobStore(uri)

A provider may implement any of the hooks (see docs/plugins.md, docs/executors.md and docs/blobs.md).
"""

from __future__ import annotations

from typing import Any

HOOK_STATE = "cascade_state_backend"
HOOK_CACHE = "cascade_cache_backend"
HOOK_EXECUTOR = "cascade_executor"
HOOK_BLOBS = "cascade_blob_store"
PROVIDES = {HOOK_STATE: "state", HOOK_CACHE: "cache", HOOK_EXECUTOR: "executor", HOOK_BLOBS: "blobs"}
KINDS = tuple(PROVIDES.values())  # the words an entry point's bracket may hold, in listing order


def backend_specs() -> type:
    """The hookspec class (built on first use so that importing Cascade does not import pluggy)."""
    import pluggy

    hookspec = pluggy.HookspecMarker("cascade")

    class BackendSpecs:
        @hookspec(firstresult=True)
        def cascade_state_backend(self, uri: Any) -> Any:
            """Return a state-backend factory ``Callable[[run_id], StateBackend]`` for ``uri`` (a BackendURI)."""

        @hookspec(firstresult=True)
        def cascade_cache_backend(self, uri: Any) -> Any:
            """Return a ``CacheBackend`` for ``uri`` (a BackendURI)."""

        @hookspec(firstresult=True)
        def cascade_executor(self, uri: Any) -> Any:
            """Return an executor (``submit``, ``close``, ``max_workers``) for ``uri`` (a BackendURI)."""

        @hookspec(firstresult=True)
        def cascade_blob_store(self, uri: Any) -> Any:
            """Return a blob store (``put``, ``get``, ``exists``, ``delete``, ``list_blobs``, ``close``) for ``uri``."""

    return BackendSpecs
