"""The calls a run has handed to its executor: hand-off, completions, cancellation, defences.

The executor contract (docs/executors.md) says each submitted call reports exactly one
outcome. The engine does not bet the run on it: an outcome for a call that is not in flight
(a second one, or one of an earlier attempt) is ignored with a warning naming the executor,
and a call whose handle says ``done()`` but whose outcome has not come within the executor's
``outcome_timeout`` fails instead of holding the run forever. A call of a task with a
``timeout=`` whose outcome has not come ``TIMEOUT_GRACE`` past its deadline (the worker did not
stop it: stuck in C code, or an executor that runs no ``run_call``) is cancelled and fails with
TaskTimeout; its late outcome is dropped. A cancelled ``arun()`` wakes the scheduler at once
through :class:`Cancel`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .._errors import PluginError, TaskTimeout
from .._plugins.call import Outcome
from .._plugins.executor import Executor
from .records import log

_WAKE: Any = object()  # put in the completion queue to wake the scheduler
TIMEOUT_GRACE = 2.0  # seconds past a call's timeout= before the driver gives up on it


class Cancel(threading.Event):
    """Set from another thread (a cancelled ``arun()``) to stop a run; wakes its scheduler at once."""

    wake: Callable[[], None] | None = None

    def set(self) -> None:
        super().set()
        wake = self.wake
        if wake is not None:
            wake()


class InFlight:
    """The calls submitted and not reported yet, by node index, and the queue their outcomes arrive in."""

    def __init__(self, executor: Executor, label: str, cancel: threading.Event | None, grace: float | None) -> None:
        self.executor = executor
        self.label = label  # how warnings and errors name the executor
        self.handles: dict[int, Any] = {}  # node index -> the executor's handle of its call
        self.attempt: dict[int, int] = {}  # node index -> the attempt in flight
        self.completed: Any = None  # queue.SimpleQueue of outcomes, made on the first hand-off
        self.grace = grace  # the executor's outcome_timeout (ExecutorCapabilities)
        self.finished: dict[int, float] = {}  # node index -> when its handle was first seen done()
        self.next_check = 0.0
        self.deadlines: dict[int, float] = {}  # node index -> when its call is given up (timeout=)
        self.timeouts: dict[int, tuple[str, float]] = {}  # node index -> (task name, timeout=) of those
        self.abandoned: set[tuple[int, int]] = set()  # (index, attempt) given up: their outcomes are dropped
        self.cancel = cancel
        if isinstance(cancel, Cancel):
            self._queue()
            cancel.wake = self._wake

    def _queue(self) -> Any:
        if self.completed is None:
            self.completed = queue.SimpleQueue()
        return self.completed

    def _wake(self) -> None:
        self.completed.put(_WAKE)

    def submit(self, call: Any, error: BaseException | None = None) -> None:
        """Hand ``call`` to the executor (or report ``error``, an input that could not be substituted)."""
        completed = self._queue()
        index, attempt = call.index, call.attempt
        self.handles[index] = None  # before submit: an executor may report the outcome at once
        self.attempt[index] = attempt
        timeout = getattr(call.task, "timeout", None)
        if timeout is not None:
            self.deadlines[index] = time.monotonic() + timeout + TIMEOUT_GRACE
            self.timeouts[index] = (call.name, timeout)
        if error is not None:
            completed.put(Outcome(index, False, error, None, 0.0, attempt))
            return
        try:
            self.handles[index] = self.executor.submit(call, completed.put)
        except Exception as exc:  # the contract says never raise: the call fails, the run goes on
            reason = str(exc).splitlines()[0] if str(exc) else ""
            failure = PluginError(
                f"executor {self.label} raised from submit() for task {call.name!r}: {type(exc).__name__}: {reason}",
                scheme=_scheme(self.label),
            )
            failure.__cause__ = exc
            completed.put(Outcome(index, False, failure, None, 0.0, attempt))

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        """The outcomes that arrive within ``timeout`` seconds (None: until one does), in flight ones only."""
        completed = self.completed
        if completed is None:
            return []
        if timeout is None and self.cancel is not None and not isinstance(self.cancel, Cancel):
            timeout = 0.1  # a plain Event wakes nobody: look at it now and then
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self.handles and self.grace is not None:
                until_check = max(0.0, self.next_check - time.monotonic())
                wait = until_check if wait is None else min(wait, until_check)
            if self.deadlines:
                until_deadline = max(0.0, min(self.deadlines.values()) - time.monotonic())
                wait = until_deadline if wait is None else min(wait, until_deadline)
            try:
                batch = [completed.get(timeout=wait)]
            except queue.Empty:
                batch = []
            while True:
                try:
                    batch.append(completed.get_nowait())
                except queue.Empty:
                    break
            outcomes = [outcome for outcome in batch if outcome is not _WAKE and self._accept(outcome)]
            if self.handles and self.grace is not None and time.monotonic() >= self.next_check:
                outcomes.extend(self._lost())
            if self.deadlines and min(self.deadlines.values()) <= time.monotonic():
                outcomes.extend(self._overdue())
            if outcomes or len(batch) or (deadline is not None and time.monotonic() >= deadline):
                return outcomes

    def _accept(self, outcome: Any) -> bool:
        """Whether ``outcome`` answers a call in flight; a second or stale one is logged and dropped."""
        index, attempt = getattr(outcome, "index", None), getattr(outcome, "attempt", None)
        if index in self.handles and self.attempt.get(index) == attempt:
            del self.handles[index], self.attempt[index]
            self.finished.pop(index, None)
            if self.deadlines:
                self.deadlines.pop(index, None)
                self.timeouts.pop(index, None)
            return True
        if (index, attempt) in self.abandoned:  # given up at its deadline: expected, not an error
            self.abandoned.discard((index, attempt))
            return False
        log.warning(
            "executor %s reported an outcome for a call that is not in flight (node index %r, attempt %r): "
            "ignored; an executor must call done(outcome) exactly once per call (docs/executors.md#the-contract)",
            self.label,
            index,
            attempt,
        )
        return False

    def _lost(self) -> list[Outcome]:
        """Failed outcomes for calls whose handle said done() over ``grace`` seconds ago with no outcome."""
        now = time.monotonic()
        grace = self.grace
        assert grace is not None
        self.next_check = now + min(1.0, grace / 2)
        lost = []
        for index, handle in list(self.handles.items()):
            done = getattr(handle, "done", None)
            try:
                finished = callable(done) and done() is True
            except Exception:
                finished = False
            if not finished:
                self.finished.pop(index, None)
                continue
            since = self.finished.setdefault(index, now)
            if now - since < grace:
                continue
            attempt = self.attempt.pop(index)
            del self.handles[index]
            del self.finished[index]
            error = PluginError(
                f"executor {self.label} finished a call (its handle says done()) but reported no outcome within "
                f"{grace:g} s: the call failed; an executor must call done(outcome) exactly once per call "
                "(docs/executors.md#liveness-what-the-engine-does-not-wait-for)",
                scheme=_scheme(self.label),
            )
            lost.append(Outcome(index, False, error, None, 0.0, attempt))
        return lost

    def _overdue(self) -> list[Outcome]:
        """TaskTimeout outcomes for calls past their deadline; each handle is cancelled."""
        now = time.monotonic()
        overdue = []
        for index in [index for index, deadline in self.deadlines.items() if deadline <= now]:
            del self.deadlines[index]
            handle = self.handles.pop(index, None)
            attempt = self.attempt.pop(index)
            self.finished.pop(index, None)
            self.abandoned.add((index, attempt))
            if handle is not None:
                try:
                    handle.cancel()  # Dask: the future is cancelled
                except Exception:  # best effort: the attempt is given up either way
                    pass
            name, timeout = self.timeouts.pop(index)
            overdue.append(Outcome(index, False, TaskTimeout(name, timeout, attempt), None, timeout, attempt))
        return overdue

    def cancel_all(self) -> None:
        """Call ``cancel()`` on every call in flight: the run is ending."""
        if isinstance(self.cancel, Cancel):
            self.cancel.wake = None
        for handle in list(self.handles.values()):
            if handle is not None:
                try:
                    handle.cancel()
                except Exception:  # best effort: the run is ending anyway
                    pass


def _scheme(label: str) -> str:
    return label.split("://", 1)[0] if "://" in label else ""
