"""``inline://``: every task in the calling thread, async tasks on a private event loop.

The fastest path for chains, and the one to use with a debugger: a breakpoint in a task
stops the driver itself.
"""

from __future__ import annotations

from typing import Any

from .._plugins.call import TaskCall, run_call, run_call_async
from .._plugins.executor import Done


class _Finished:
    """The handle of a call that already ran: nothing left to cancel."""

    __slots__ = ()

    def cancel(self) -> bool:
        return False

    def done(self) -> bool:
        return True


_FINISHED = _Finished()


class InlineExecutor:
    """Runs each call inside ``submit``, in the caller's thread, one at a time."""

    max_workers = 1
    in_driver = True

    def __init__(self) -> None:
        self._loop: Any = None

    def submit(self, call: TaskCall, done: Done) -> _Finished:
        if call.is_async:
            if self._loop is None:
                import asyncio

                self._loop = asyncio.new_event_loop()
            outcome = self._loop.run_until_complete(run_call_async(call))
        else:
            outcome = run_call(call)
        done(outcome)
        return _FINISHED

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __repr__(self) -> str:
        return "InlineExecutor()"
