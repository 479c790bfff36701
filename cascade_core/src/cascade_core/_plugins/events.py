"""Lifecycle events as pluggy hooks, so observers are ordinary pluggy plugins.

An observer is any object with methods marked ``@cascade_core.hookimpl`` whose names
are among the hookspecs below::

    class Printer:
        @cs.hookimpl
        def cascade_task_finished(self, run_id, task, node_id, duration, cached):
            print(task, duration)

    cs.run(target, observers=[Printer()])

Every hook, ``cascade_task_retrying`` included, is called from the thread that drives the
run (the caller's for ``run``; for ``arun`` the thread it hands the run to), never from a
worker: the scheduler handles each outcome there and announces a retry before its delay. So
an observer needs no lock against the engine, but a slow hook slows the run. With no
observer registered pluggy is not even imported, so events cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PROJECT = "cascade"


def _markers() -> tuple[Any, Any]:
    import pluggy

    return pluggy.HookspecMarker(PROJECT), pluggy.HookimplMarker(PROJECT)


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        return _markers()[1]
    if name == "hookspec":
        return _markers()[0]
    raise AttributeError(name)


def _event_specs() -> type:
    hookspec, _ = _markers()

    class EventSpecs:
        """Hookspecs for run and task lifecycle events."""

        @hookspec
        def cascade_run_started(self, run_id: str, tasks: int, state: str, cache: str) -> None:
            """A run starts: its id, how many tasks its graph has, and the masked backend URIs."""

        @hookspec
        def cascade_run_finished(self, run_id: str, status: str, counts: dict, duration: float) -> None:
            """A run ended with ``status`` "succeeded" or "failed"; counts by outcome; seconds."""

        @hookspec
        def cascade_graph_grew(self, run_id: str, task: str, node_id: str, added: int, tasks: int) -> None:
            """A node expanded (a map, a router, a task that returned lazy results): ``added`` nodes
            joined the run, which has ``tasks`` now."""

        @hookspec
        def cascade_task_started(self, run_id: str, task: str, node_id: str) -> None:
            """A task was handed to a worker."""

        @hookspec
        def cascade_task_finished(self, run_id: str, task: str, node_id: str, duration: float, cached: bool) -> None:
            """A task produced its result (``cached``: it came from the cache backend)."""

        @hookspec
        def cascade_task_skipped(self, run_id: str, task: str, node_id: str, reason: str) -> None:
            """A task did not run: "resumed", "upstream failed: ..." or "not needed"."""

        @hookspec
        def cascade_task_failed(self, run_id: str, task: str, node_id: str, error: BaseException) -> None:
            """A task failed after its last retry."""

        @hookspec
        def cascade_task_retrying(
            self, run_id: str, task: str, node_id: str, attempt: int, error: BaseException, delay: float
        ) -> None:
            """A task raised and will be tried again after ``delay`` seconds."""

    return EventSpecs


class Events:
    """Dispatches events to observers through a pluggy PluginManager."""

    def __init__(self, observers: Iterable[object]) -> None:
        import pluggy

        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(_event_specs())
        for observer in observers:
            self._pm.register(observer)
        self._pm.check_pending()
        self.hook = self._pm.hook


def make_events(observers: Iterable[object]) -> Events | None:
    """An Events dispatcher, or None when there is no observer (the fast path)."""
    observers = list(observers)
    return Events(observers) if observers else None
