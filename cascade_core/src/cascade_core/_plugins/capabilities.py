"""What a run's state, cache and executor can do, read once when the run starts.

Their optional members (docs/backends.md, "Optional capabilities"; docs/executors.md) are
looked up here and nowhere else in a run: the engine calls the typed fields, and mypy checks
those calls against the Protocols they name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .._store.protocols import TaskRecords

DEFAULT_OUTCOME_TIMEOUT = 60.0  # seconds a call's outcome may lag behind its handle's done() (docs/executors.md)


class Gather(Protocol):
    """An executor whose results are handles to values kept on its workers (Dask)."""

    def __call__(self, values: list[Any], /) -> list[Any]: ...


class HoldReference(Protocol):
    """An executor whose workers read stored blobs themselves: it takes a stored reference."""

    def __call__(self, reference: bytes, encoding: Any, /) -> Any: ...


@dataclass(frozen=True)
class StoreCapabilities:
    """What a state or cache backend declares: its serializer and limits, and its optional methods."""

    serializer: str = "pickle"
    trusted_store: bool = False
    max_payload_bytes: int | None = None
    max_payload_option: str | None = None
    task_records: TaskRecords | None = None  # the backend itself, when it keeps task records
    count_entries: Callable[[Iterable[str]], int] | None = None  # EntryCount

    @classmethod
    def of(cls, backend: Any) -> StoreCapabilities:
        records = backend if callable(getattr(backend, "put_task_records", None)) else None
        count = getattr(backend, "count_entries", None)
        return cls(
            serializer=getattr(backend, "serializer", "pickle"),
            trusted_store=getattr(backend, "trusted_store", False) is True,
            max_payload_bytes=getattr(backend, "max_payload_bytes", None),
            max_payload_option=getattr(backend, "max_payload_option", None),
            task_records=records,
            count_entries=count if callable(count) else None,
        )


@dataclass(frozen=True)
class ExecutorCapabilities:
    """What an executor declares beyond ``submit``, ``close`` and ``max_workers``."""

    in_driver: bool = False  # calls may run in the driver's own thread (the chain fast path)
    gather: Gather | None = None
    hold_reference: HoldReference | None = None
    use_event_loop: Callable[[Any], None] | None = None
    outcome_timeout: float | None = DEFAULT_OUTCOME_TIMEOUT  # None: the check is off

    @classmethod
    def of(cls, executor: Any) -> ExecutorCapabilities:
        def method(name: str) -> Any:
            member = getattr(executor, name, None)
            return member if callable(member) else None

        timeout = getattr(executor, "outcome_timeout", DEFAULT_OUTCOME_TIMEOUT)
        number = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
        if timeout is not None and not (number and timeout > 0):
            timeout = DEFAULT_OUTCOME_TIMEOUT
        return cls(
            in_driver=getattr(executor, "in_driver", False) is True,
            gather=method("gather"),
            hold_reference=method("hold_reference"),
            use_event_loop=method("use_event_loop"),
            outcome_timeout=None if timeout is None else float(timeout),
        )
