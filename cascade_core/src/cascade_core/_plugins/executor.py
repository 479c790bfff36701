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
    executor can start. The handle ``submit`` returns needs ``cancel()``: the engine calls
    it on every call in flight when a run stops early; ``done()`` on it is optional.

    Optional members, each read by the engine only when present (docs/executors.md):

    - ``in_driver = True``: calls may run in the driver's own thread (a lone ready sync task
      does, the chain fast path);
    - ``use_event_loop(loop)``: called before an ``arun()`` with the caller's event loop, for
      an executor the run opened from a URI, so async tasks run on it;
    - ``gather(values)``: the real values behind outcome values that are handles to values
      kept on the workers (Dask), for targets and cache hits the driver needs;
    - ``hold_reference(reference, encoding)``: a handle for a stored blob reference, for an
      executor whose workers read blobs themselves (the driver then never loads the blob);
    - ``outcome_timeout``: seconds to wait for an outcome once the handle's optional
      ``done()`` says the call finished, then the call fails (None: no limit; default 60).
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
