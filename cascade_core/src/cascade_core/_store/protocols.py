"""The contracts every state and cache backend implements (see docs/backends.md).

Backends store opaque ``bytes``: the engine encodes every value (header, serializer,
checksum or signature) before it reaches a backend, so a backend never unpickles
anything and every backend gets the same integrity checks.

All methods take and return batches so that a networked backend can answer a whole
level of the graph in one round trip. ``StateBackendBase`` and ``CacheBackendBase``
add the single-item conveniences (``put_result``, ``get``, ...) on top of the batch
methods; deriving from them is optional.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class StateBackend(Protocol):
    """Everything one run stores: node results, skip reasons and run metadata.

    An instance is bound to one run id. Node ids and reasons are ``str``; results are ``bytes``.
    """

    run_id: str

    def put_results(self, results: Mapping[str, bytes]) -> None:
        """Store many node results at once (overwriting)."""

    def get_results(self, node_ids: Iterable[str]) -> dict[str, bytes]:
        """Return the stored results of the given nodes; missing ones are left out."""

    def result_ids(self) -> set[str]:
        """The ids of every node that has a stored result (what a resumed run skips)."""

    def mark_skipped(self, reasons: Mapping[str, str]) -> None:
        """Record why nodes did not run (node id -> one-line reason)."""

    def get_skip_reasons(self) -> dict[str, str]:
        """Every recorded skip reason of this run."""

    def set_run_info(self, info: Mapping[str, str]) -> None:
        """Merge run metadata (``status``, ``target``, ``tasks``, ``count_*``, ...).

        The backend itself stamps ``created`` (first write of the run) and ``updated`` (every
        write of results, skip reasons or info) as ISO-8601 UTC strings.
        """

    def get_run_info(self) -> dict[str, str]:
        """The run metadata stored so far (empty for an unknown run)."""

    def close(self) -> None:
        """Release connections. Calling it twice is harmless."""


StateBackendFactory = Callable[[str], StateBackend]
"""Called by the engine with a run id; returns a state backend bound to that run."""


@runtime_checkable
class CacheBackend(Protocol):
    """Results of cacheable tasks, shared across runs, keyed by cache key."""

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """Return the live entries among ``keys``; missing or expired ones are left out."""

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store many entries; ``ttl`` in seconds (None: the backend's default, or never expire)."""

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete entries; return how many existed."""

    def close(self) -> None:
        """Release connections. Calling it twice is harmless."""


@runtime_checkable
class EntryCount(Protocol):
    """Optional capability of a cache backend: count entries without reading them.

    A warm rerun uses the values of few of its cache hits (the targets, and what feeds a task
    that runs); with this, it reads only those and counts the rest, instead of transferring
    every cached payload.
    """

    def count_entries(self, keys: Iterable[str]) -> int:
        """How many distinct keys among ``keys`` have live entries (Redis ``EXISTS``)."""


@runtime_checkable
class RunCatalog(Protocol):
    """Optional capability of a state-backend factory: list and delete stored runs."""

    def list_runs(self) -> list[dict[str, str]]:
        """Every stored run's metadata, each with at least ``run_id``."""

    def delete_run(self, run_id: str) -> bool:
        """Delete everything stored for one run; return whether it existed."""


@runtime_checkable
class TaskRecords(Protocol):
    """Optional capability of a state backend: per-task records for ``cascade runs show``.

    A record is a JSON object as a string: ``task``, ``status`` (done, cached, failed, skipped),
    ``duration`` (seconds), ``size`` (payload bytes), ``error`` or ``reason``, ``finished`` (ISO time),
    ``driver`` (``host <name> pid <pid>``: which driver of the run wrote it), and ``blob`` (the blob id)
    for a result stored by reference, whose ``size`` is then the result's, not the reference's.
    The engine writes the records of one run in one call when the run ends.
    """

    def put_task_records(self, records: Mapping[str, str]) -> None:
        """Store or replace records (node id -> JSON string)."""

    def get_task_records(self) -> dict[str, str]:
        """Every record of this run."""


@runtime_checkable
class Leases(Protocol):
    """Optional capability of state backends (names: node ids of the run, and the engine's
    run-lease names, which start with ``~``) and cache backends (names: cache keys): short
    exclusive claims that expire unless renewed. Names are arbitrary strings.

    On the state backend the engine holds a run lease, so that one driver at a time runs a run
    id unless the drivers share it (``leases=True``), and sharing drivers claim each node before
    running it; on the cache, concurrent runs needing one entry compute it once (docs/backends.md).
    """

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        """Claim each free or expired name (or one ``owner`` already holds) for ``ttl`` seconds.

        Return the names ``owner`` holds now.
        """

    def renew_leases(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        """Extend the names ``owner`` still holds by ``ttl`` seconds; return those."""

    def release_leases(self, names: Sequence[str], owner: str) -> None:
        """Free the names ``owner`` holds; names held by others are left alone."""


LEASE_METHODS = ("acquire_leases", "renew_leases", "release_leases")


@runtime_checkable
class LeaseHolders(Protocol):
    """Optional capability of a backend with Leases: who holds names now.

    With it, a driver finds a crashed driver of its own machine holding the run or a node, and
    frees what it held at once instead of waiting for its leases to expire (docs/backends.md).
    """

    def lease_holders(self, names: Sequence[str]) -> dict[str, str]:
        """The owner token of each name of ``names`` held now (unexpired); free names are left out."""


@runtime_checkable
class CacheCatalog(Protocol):
    """Optional capability of a cache backend: find and clear entries by key prefix."""

    def clear(self, prefix: str = "") -> int:
        """Delete every entry whose key starts with ``prefix``; return how many."""


STATE_METHODS = (
    "put_results",
    "get_results",
    "result_ids",
    "mark_skipped",
    "get_skip_reasons",
    "set_run_info",
    "get_run_info",
    "close",
)
CACHE_METHODS = ("get_many", "set_many", "delete_many", "close")


def missing_methods(obj: object, names: Iterable[str]) -> list[str]:
    """The names in ``names`` that ``obj`` does not have as callables."""
    return [name for name in names if not callable(getattr(obj, name, None))]


class StateBackendBase:
    """Optional base class: the seed design's single-item methods on top of the batch ones."""

    run_id: str

    def put_result(self, node_id: str, payload: bytes) -> None:
        self.put_results({node_id: payload})  # type: ignore[attr-defined]

    def get_result(self, node_id: str) -> bytes | None:
        return self.get_results([node_id]).get(node_id)  # type: ignore[attr-defined]

    def has_result(self, node_id: str) -> bool:
        return node_id in self.result_ids()  # type: ignore[attr-defined]

    def get_skip_reason(self, node_id: str) -> str | None:
        return self.get_skip_reasons().get(node_id)  # type: ignore[attr-defined]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # type: ignore[attr-defined]


class CacheBackendBase:
    """Optional base class: ``get``/``set``/``delete`` on top of the batch methods."""

    def get(self, key: str) -> bytes | None:
        return self.get_many([key]).get(key)  # type: ignore[attr-defined]

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.set_many({key: value}, ttl)  # type: ignore[attr-defined]

    def delete(self, key: str) -> bool:
        return bool(self.delete_many([key]))  # type: ignore[attr-defined]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # type: ignore[attr-defined]
