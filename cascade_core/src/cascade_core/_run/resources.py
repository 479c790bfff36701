"""The backends, executor and blob store of one run: resolved on entry, closed on exit when owned."""

from __future__ import annotations

from typing import Any

from .._plugins.capabilities import ExecutorCapabilities
from .._plugins.resolve import resolve_cache, resolve_executor, resolve_state
from .._store.blob_refs import resolve_blobs
from .._store.blob_writers import record, run_writers


class RunResources:
    """The backends and executor of one run: resolved on entry, closed on exit when owned."""

    def __init__(self, engine: Any, workers: int | None, loop: Any) -> None:
        self.engine, self.workers, self.loop = engine, workers, loop
        self.state: Any = None
        self._closers: list[Any] = []

    def __enter__(self) -> RunResources:
        try:
            self.state_spec = resolve_state(self.engine.state_arg)
            self._closers.append(self.state_spec.close)
            self.cache_spec = resolve_cache(self.engine.cache_arg)
            self._closers.append(self.cache_spec.close)
            self.executor_spec = resolve_executor(self.engine.executor_arg, self.workers)
            self._closers.append(self.executor_spec.close)
            self.blobs = resolve_blobs(self.engine.blobs_arg)  # stores stay open for the process
            if self.blobs is not None:  # before anything is stored: gc asks for these stores
                record(self.blobs.store, self.blobs.label, run_writers(self.engine.state_arg, self.engine.cache_arg))
        except BaseException:
            self.__exit__()
            raise
        self.executor_caps = caps = ExecutorCapabilities.of(self.executor_spec.executor)
        if self.loop is not None and self.executor_spec.owned and caps.use_event_loop is not None:
            caps.use_event_loop(self.loop)
        return self

    def open_state(self, run_id: str) -> Any:
        self.state = self.state_spec.open(run_id)
        if self.state_spec.instance is None:
            self._closers.append(self.state.close)
        return self.state

    def __exit__(self, *exc_info: object) -> None:
        errors = []
        for close in reversed(self._closers):
            try:
                close()
            except BaseException as exc:  # close the others; re-raise the first
                errors.append(exc)
        self._closers.clear()
        if errors and not any(exc_info):
            raise errors[0]
