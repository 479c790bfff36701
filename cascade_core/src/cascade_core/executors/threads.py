"""``threads://?max_workers=N``: the default executor.

Sync tasks run on daemon worker threads started on demand (daemon, so that a driver
interrupted with Ctrl-C exits even while a task is still running); async tasks run on an
event loop: the caller's under ``arun()``, otherwise a private one on its own thread.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .._plugins.call import Outcome, TaskCall, run_call, run_call_async
from .._plugins.executor import Done

_STOP: Any = None


def default_workers() -> int:
    """``min(32, cpu count + 4)``, as ``concurrent.futures.ThreadPoolExecutor`` chooses."""
    return min(32, (os.cpu_count() or 1) + 4)


class _Queued:
    """A sync call waiting for or running on a worker thread."""

    __slots__ = ("call", "report", "cancelled", "started", "finished")

    def __init__(self, call: TaskCall, report: Done) -> None:
        self.call = call
        self.report = report
        self.cancelled = False
        self.started = False
        self.finished = False

    def cancel(self) -> bool:
        """Skip the call if no worker has taken it yet (a running thread cannot be stopped)."""
        self.cancelled = True
        return not self.started

    def done(self) -> bool:
        """Whether the call finished (its outcome is reported or about to be): the engine's liveness check."""
        return self.finished


class ThreadsExecutor:
    """A pool of up to ``max_workers`` threads, plus an event loop for async tasks."""

    in_driver = True  # a lone ready sync task may run in the driver's thread: no hand-off

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or default_workers()
        self._lock = threading.Lock()
        self._work: Any = None  # queue.SimpleQueue, created with the first thread
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._loop: Any = None  # the caller's loop under arun()
        self._own_loop: tuple[Any, threading.Thread] | None = None

    def use_event_loop(self, loop: Any) -> None:
        """Run async tasks on ``loop`` (the caller's, under ``arun()``) instead of a private one."""
        self._loop = loop

    def submit(self, call: TaskCall, done: Done) -> Any:
        if call.is_async:
            import asyncio

            future = asyncio.run_coroutine_threadsafe(run_call_async(call), self._event_loop())
            future.add_done_callback(lambda finished: done(_outcome_of(finished, call)))
            return future
        item = _Queued(call, done)
        with self._lock:
            if self._work is None:
                import queue

                self._work = queue.SimpleQueue()
            if self._idle == 0 and len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._worker, name=f"cascade-worker-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._work.put(item)
        return item

    def _worker(self) -> None:
        work = self._work
        while True:
            item = work.get()
            if item is _STOP:
                return
            call = item.call
            item.started = True
            if item.cancelled:
                import asyncio

                outcome = Outcome(call.index, False, asyncio.CancelledError(), None, 0.0, call.attempt)
            else:
                try:
                    outcome = run_call(call)
                except BaseException as exc:  # never leave the driver waiting for this call
                    outcome = Outcome(call.index, False, exc, None, 0.0, call.attempt)
            with self._lock:
                self._idle += 1
            item.finished = True
            item.report(outcome)

    def _event_loop(self) -> Any:
        if self._loop is not None:
            return self._loop
        with self._lock:
            if self._own_loop is None:
                import asyncio

                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="cascade-event-loop", daemon=True)
                thread.start()
                self._own_loop = (loop, thread)
            return self._own_loop[0]

    def close(self) -> None:
        with self._lock:
            threads, self._threads, self._idle = self._threads, [], 0
            own, self._own_loop = self._own_loop, None
        for _ in threads:
            self._work.put(_STOP)
        if own is not None:
            import asyncio

            loop, thread = own
            try:  # cancel what is still pending, so that its cleanup runs
                asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(timeout=5)
            except Exception:
                pass
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()

    def __repr__(self) -> str:
        return f"ThreadsExecutor(max_workers={self.max_workers})"


async def _cancel_pending() -> None:
    import asyncio

    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _outcome_of(future: Any, call: TaskCall) -> Outcome:
    """The outcome of an async call from its concurrent.futures.Future."""
    if future.cancelled():
        import asyncio

        return Outcome(call.index, False, asyncio.CancelledError(), None, 0.0, call.attempt)
    error = future.exception()
    if error is not None:
        return Outcome(call.index, False, error, None, 0.0, call.attempt)
    return future.result()
