"""The contract of an executor: where tasks run (docs/executors.md).

The engine decides *what* runs and when (plan, scheduler, retries, leases, storing);
an executor only runs :class:`~cascade_core._plugins.call.TaskCall` objects and reports each
:class:`~cascade_core._plugins.call.Outcome` through the callback it was given. Its shape is the
one ``concurrent.futures`` and ``distributed`` users know: ``submit`` returns something
with ``cancel()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

# Typed Any, not _call's TaskCall and Outcome: the registry validates executors through this
# module, and _call reaches the registry for blob stores, so importing _call here is a cycle.
Done = Callable[[Any], None]  # called with the Outcome
"""Called once per submitted call, from any thread, with its outcome."""


@runtime_checkable
class Cancellable(Protocol):
    def cancel(self) -> bool:
        """Stop the call if it has not finished (best effort); return whether it will not run."""


@runtime_checkable
class Executor(Protocol):
    """Runs task calls. One executor object may serve several runs, one after another or at once.

    ``max_workers``: how many calls it runs at once. The scheduler never has more calls
    submitted than that, so with ``leases=True`` a driver claims no more nodes than its
    executor can start. Optional members: ``in_driver``, ``use_event_loop(loop)`` and, for an
    executor whose outcome values are handles to values kept on its workers, ``gather(values)``.
    """

    max_workers: int

    def submit(self, call: Any, done: Done) -> Cancellable:  # call: a TaskCall
        """Start ``call``; call ``done(outcome)`` exactly once when it finishes, fails or is cancelled.

        Never raise for the task's own errors: report them as a failed outcome. Do not retry:
        the engine resubmits a failed call with ``attempt + 1`` when the task allows it.
        """

    def close(self) -> None:
        """Release workers and connections. Calling it twice is harmless."""


EXECUTOR_METHODS = ("submit", "close")


def missing_executor_methods(obj: object) -> list[str]:
    """What ``obj`` lacks to be an executor (methods, and a whole ``max_workers`` >= 1)."""
    missing = [name for name in EXECUTOR_METHODS if not callable(getattr(obj, name, None))]
    workers = getattr(obj, "max_workers", None)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        missing.append("max_workers")
    return missing


def gatherer(executor: Any) -> Callable[[list[Any]], list[Any]] | None:
    """The executor's ``gather(values)`` when its results are handles (values kept on its workers), else None."""
    gather = getattr(executor, "gather", None)
    return gather if callable(gather) else None


def holder(executor: Any) -> Callable[[bytes, Any], Any] | None:
    """The executor's ``hold_reference(reference, encoding)`` when its workers read blobs themselves
    (Dask): a resumed run hands it a stored blob reference instead of loading the blob in the driver."""
    hold = getattr(executor, "hold_reference", None)
    return hold if callable(hold) else None


def runs_in_driver(executor: Any) -> bool:
    """Whether calls may run in the driver's own thread (the chain fast path): ``in_driver = True``."""
    return getattr(executor, "in_driver", False) is True
