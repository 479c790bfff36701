"""A write that finds its blob already in S3 refreshes the blob's modification time (a server-side
copy onto itself), so that gc's grace period starts over: against moto's S3 server."""

from __future__ import annotations

import hashlib
import time

from cascade_core._store import blob_gc, blob_refs


def _blob(fill: bytes, size: int) -> tuple[str, bytes]:
    data = fill * size
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def _mtimes(store) -> dict[str, float]:
    return {info.blob_id: info.mtime for info in store.list_blobs()}


def _past_second(mtime: float) -> None:
    """Wait until the clock is past ``mtime``'s whole second (S3 keeps LastModified in seconds)."""
    time.sleep(max(0.0, int(mtime) + 1.05 - time.time()))


def test_reusing_a_blob_refreshes_its_time_at_most_once_a_minute(s3_bucket, monkeypatch):
    from cascade_fsspec import store as module

    store = blob_refs.resolve_blobs(s3_bucket).store
    blob_id, data = _blob(b"a", 200_000)
    assert store.put(blob_id, data) is True
    written = _mtimes(store)[blob_id]
    _past_second(written)
    # Reused within REFRESH_AFTER (60 s) of its write: left as it is, no copy.
    assert store.put(blob_id, data) is False
    assert _mtimes(store)[blob_id] == written
    # Reused later: copied onto itself, server-side; same bytes, a new time.
    monkeypatch.setattr(module, "REFRESH_AFTER", 0.5)
    assert store.put(blob_id, data) is False
    refreshed = _mtimes(store)[blob_id]
    assert refreshed > written
    assert store.get(blob_id) == data and list(_mtimes(store)) == [blob_id]


def test_gc_keeps_a_blob_reused_within_its_grace_period(s3_bucket, monkeypatch):
    from cascade_fsspec import store as module

    monkeypatch.setattr(module, "REFRESH_AFTER", 1.0)
    store = blob_refs.resolve_blobs(s3_bucket).store
    reused, reused_data = _blob(b"r", 100_000)
    idle, idle_data = _blob(b"i", 100_000)
    assert store.put(reused, reused_data) and store.put(idle, idle_data)
    _past_second(max(_mtimes(store).values()) + 2)  # both older than a 2 s grace period
    assert store.put(reused, reused_data) is False  # a run produces it again, its reference not stored yet
    report = blob_gc.collect(store, set(), 2.0, dry_run=False)
    assert report.deleted == [idle] and report.recent == 1
    assert store.get(reused) == reused_data and not store.exists(idle)


def test_a_blob_over_the_copy_limit_is_refreshed_by_a_multipart_copy(s3_bucket, monkeypatch):
    import s3fs.core

    from cascade_fsspec import store as module

    # Stand-ins for S3's 5 GiB CopyObject limit and s3fs's 150 MiB managed-copy threshold.
    monkeypatch.setattr(module, "COPY_LIMIT", 1 << 20)
    monkeypatch.setattr(s3fs.core, "MANAGED_COPY_THRESHOLD", 1 << 20)
    monkeypatch.setattr(module, "REFRESH_AFTER", 0.5)
    store = blob_refs.resolve_blobs(s3_bucket).store
    blob_id, data = _blob(b"m", 6 << 20)
    assert store.put(blob_id, data) is True
    written = _mtimes(store)[blob_id]
    _past_second(written)
    assert store.put(blob_id, data) is False
    assert _mtimes(store)[blob_id] > written
    assert store.get(blob_id) == data
