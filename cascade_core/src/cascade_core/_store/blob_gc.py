"""Which blobs are live, and deleting the others (``cascade blobs gc``; docs/blobs.md#gc).

A blob is live when a stored state result of any run, or any cache entry, holds a reference
to it. References are found in the payload bytes themselves (the serializer byte ``r`` and
the text ``cascade-blob sha256:...``), without verifying or deserializing anything: a
reference that fails its checksum still keeps its blob, so gc can only err on keeping.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .._errors import BackendError
from .blob_protocol import TemporaryFiles
from .serializers import REF_CODE, REF_PREFIX

_REF_RE = re.compile(re.escape(REF_PREFIX) + rb"(sha256:[0-9a-f]{64}) ")


def references(payloads: Iterable[bytes]) -> set[str]:
    """The blob ids that these payloads refer to."""
    found = set()
    for payload in payloads:
        if payload[3:4] == REF_CODE:
            match = _REF_RE.search(payload)
            if match:
                found.add(match[1].decode())
    return found


def state_references(catalog: Any) -> set[str]:
    """Every blob referenced by a stored result of any run in ``catalog`` (a state-backend factory)."""
    found: set[str] = set()
    for run in catalog.list_runs():
        backend = catalog(run["run_id"])
        try:
            ids = backend.result_ids()
            if ids:
                found |= references(backend.get_results(list(ids)).values())
        finally:
            backend.close()
    return found


def cache_references(cache: Any, label: str) -> set[str]:
    """Every blob referenced by an entry of ``cache`` (needs its ``iter_entries`` capability)."""
    scan = getattr(cache, "iter_entries", None)
    if not callable(scan):
        raise BackendError(
            f"the cache {label} cannot list its entries (no iter_entries capability), so gc cannot tell which "
            "blobs it references: run gc with a --cache that can, or clear the cache first"
        )
    return references(payload for _, payload in scan())


@dataclass
class GcReport:
    """What gc found and did."""

    blobs: int = 0
    bytes: int = 0
    referenced: int = 0
    recent: int = 0
    deleted: list[str] = field(default_factory=list)
    deleted_bytes: int = 0
    temporary: int = 0  # temporary files of writes under way or killed (stores that have them)
    temporary_deleted: list[str] = field(default_factory=list)  # the ones older than the grace period
    temporary_deleted_bytes: int = 0


def plan(store: Any, live: set[str], older_than: float) -> GcReport:
    """What gc deletes: the blobs not in ``live`` written over ``older_than`` seconds ago, and the
    store's temporary files (left by killed writes) older than that. Deletes nothing.

    ``live`` must be gathered before this is called: a blob written after that is recent, so a
    run still writing keeps its blobs as long as it takes under the grace period.
    """
    report = GcReport()
    cutoff = time.time() - older_than
    for info in list(store.list_blobs()):
        report.blobs += 1
        report.bytes += info.size
        if info.blob_id in live:
            report.referenced += 1
        elif info.mtime > cutoff:
            report.recent += 1
        else:
            report.deleted.append(info.blob_id)
            report.deleted_bytes += info.size
    if isinstance(store, TemporaryFiles):  # optional: file:// has them, object stores do not
        for temp in list(store.list_temporary()):
            report.temporary += 1
            if temp.mtime > cutoff:
                continue  # a write under way
            report.temporary_deleted.append(temp.name)
            report.temporary_deleted_bytes += temp.size
    return report


def remove(store: Any, report: GcReport) -> None:
    """Delete what :func:`plan` chose."""
    for blob_id in report.deleted:
        store.delete(blob_id)
    for name in report.temporary_deleted:
        store.delete_temporary(name)


def collect(store: Any, live: set[str], older_than: float, *, dry_run: bool) -> GcReport:
    """:func:`plan`, then (unless ``dry_run``) :func:`remove`."""
    report = plan(store, live, older_than)
    if not dry_run:
        remove(store, report)
    return report


def parse_duration(text: str) -> float:
    """Seconds of ``90s``, ``30m``, ``24h``, ``7d`` or a plain number of seconds."""
    raw = text.strip().lower()
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(raw[-1:])
    number = raw[:-1] if factor else raw
    try:
        value = float(number) * (factor or 1)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"expected a duration such as 90s, 30m, 24h or 7d, got {text!r}")
    return value
