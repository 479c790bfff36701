"""One attempt under a task's ``timeout=``: cancelled (async) or abandoned (sync) at its deadline.

Python cannot interrupt a thread, so a sync attempt runs in a daemon thread of its own while
the caller waits for it until the deadline; past it, the attempt fails with TaskTimeout and
the thread is left to finish on its own, its result discarded (docs/concepts.md, "Limits").
The wait is an ``Event.wait``, which Ctrl-C interrupts in the main thread. An async attempt
is a task on the running loop, cancelled at the deadline.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .._errors import TaskTimeout
from .call import Outcome, TaskCall, finish_call


def run_with_timeout(call: TaskCall, timeout: float) -> Outcome:
    """``run_call`` of a sync call under ``timeout`` seconds."""
    started = time.perf_counter()
    box: list[tuple[bool, Any]] = []
    done = threading.Event()

    def attempt() -> None:
        try:
            box.append((True, call.task.fn(*call.args, **call.kwargs)))
        except BaseException as exc:  # the caller decides what it means
            box.append((False, exc))
        done.set()

    thread = threading.Thread(target=attempt, name=f"cascade-attempt {call.name}", daemon=True)
    try:
        thread.start()
        finished = done.wait(timeout)
    except BaseException as exc:  # Ctrl-C while waiting: the engine stops the run
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    if not finished:
        error = TaskTimeout(call.name, timeout, call.attempt)
        return Outcome(call.index, False, error, None, time.perf_counter() - started, call.attempt)
    ok, value = box[0]
    if not ok:
        return Outcome(call.index, False, value, None, time.perf_counter() - started, call.attempt)
    return finish_call(call, value, started)


async def run_async_with_timeout(call: TaskCall, timeout: float) -> Outcome:
    """``run_call_async`` under ``timeout`` seconds: the coroutine is cancelled at the deadline."""
    import asyncio

    started = time.perf_counter()
    task = asyncio.ensure_future(call.task.fn(*call.args, **call.kwargs))
    try:
        finished, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException as exc:  # the awaiting run was cancelled: so is the attempt
        task.cancel()
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    if not finished:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)  # let it clean up; one that ignores cancel is left
        error = TaskTimeout(call.name, timeout, call.attempt)
        return Outcome(call.index, False, error, None, time.perf_counter() - started, call.attempt)
    try:
        value = task.result()
    except BaseException as exc:
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    return finish_call(call, value, started)
