"""The blob-store contract, for the blob store of ``--cascade-uri`` (docs/blobs.md).

Every test writes blobs of fresh random bytes, so it never meets another's, and deletes
what it wrote.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time

import pytest

import cascade_core as cs
from cascade_core.testing import executor_tasks as t
from cascade_core.testing.plugin import run_concurrently


def _blob(size: int = 1000) -> tuple[str, bytes]:
    data = os.urandom(size)
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


@pytest.fixture
def written(cascade_blob_store):
    ids: list[str] = []
    yield ids
    for blob_id in ids:
        cascade_blob_store.delete(blob_id)


def test_round_trip_of_varied_sizes(cascade_blob_store, written):
    for size in (0, 1, 1000, 5 * 2**20):
        blob_id, data = _blob(size)
        written.append(blob_id)
        assert cascade_blob_store.put(blob_id, data) is True
        assert cascade_blob_store.exists(blob_id)
        got = cascade_blob_store.get(blob_id)
        assert isinstance(got, bytes) and got == data


def test_write_once_an_existing_blob_is_not_written_again(cascade_blob_store, written):
    blob_id, data = _blob()
    written.append(blob_id)
    assert cascade_blob_store.put(blob_id, data) is True
    assert cascade_blob_store.put(blob_id, b"other bytes under the same id") is False
    assert cascade_blob_store.get(blob_id) == data


def test_missing_blobs(cascade_blob_store):
    blob_id, _ = _blob()
    assert cascade_blob_store.get(blob_id) is None
    assert cascade_blob_store.exists(blob_id) is False
    assert cascade_blob_store.delete(blob_id) is False


def test_delete(cascade_blob_store):
    blob_id, data = _blob()
    cascade_blob_store.put(blob_id, data)
    assert cascade_blob_store.delete(blob_id) is True
    assert cascade_blob_store.get(blob_id) is None and not cascade_blob_store.exists(blob_id)
    assert cascade_blob_store.put(blob_id, data) is True  # written again after a delete
    cascade_blob_store.delete(blob_id)


def test_listing_for_gc_has_ids_sizes_and_times(cascade_blob_store, written):
    blobs = dict(_blob(size) for size in (10, 2000, 30000))
    for blob_id, data in blobs.items():
        cascade_blob_store.put(blob_id, data)
        written.append(blob_id)
    listed = {info.blob_id: info for info in cascade_blob_store.list_blobs() if info.blob_id in blobs}
    assert set(listed) == set(blobs)
    now = time.time()
    for blob_id, info in listed.items():
        assert info.size == len(blobs[blob_id])
        assert now - 3600 < info.mtime < now + 3600  # a store's clock may differ a little from ours


def test_concurrent_writers_of_one_blob(cascade_blob_store, written):
    blob_id, data = _blob(200_000)
    written.append(blob_id)
    results: list[bool] = []
    errors = run_concurrently(lambda _: results.append(cascade_blob_store.put(blob_id, data)), list(range(8)))
    assert errors == []
    assert len(results) == 8 and any(results)
    assert cascade_blob_store.get(blob_id) == data
    assert [info.blob_id for info in cascade_blob_store.list_blobs()].count(blob_id) == 1


def test_reads_are_verified_against_the_id(cascade_blob_store, written):
    from cascade_core._blobs import BlobSpec, dereference

    blob_id, data = _blob()
    written.append(blob_id)
    cascade_blob_store.put(blob_id, data[:-1] + b"?")  # bytes that do not match their id
    spec = BlobSpec("kit", "kit", 1, cascade_blob_store)
    reference = f"cascade-blob {blob_id} {len(data)} p".encode()
    with pytest.raises(cs.IntegrityError, match="fails its hash"):
        dereference(spec, "state/kit/node", reference)
    assert cascade_blob_store.get(blob_id) is None  # the corrupt blob was deleted, so a rerun writes it again


def test_engine_stores_large_results_once_and_reads_them_back(cascade_uri, cascade_blob_store, written):
    payload = os.urandom(100_000)
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    blob_id = "sha256:" + hashlib.sha256(body).hexdigest()
    written.append(blob_id)
    store = cs.MemoryStateStore()
    uri = (
        cascade_uri
        if "threshold=" in cascade_uri
        else cascade_uri + ("&" if "?" in cascade_uri else "?") + "threshold=1K"
    )

    assert cs.run(t.after(payload), state_backend=store, blob_store=uri, run_id="kit") == payload
    assert cascade_blob_store.get(blob_id) == body
    assert cs.run(t.after(payload), state_backend=store, blob_store=uri, run_id="kit-2") == payload
    assert [info.blob_id for info in cascade_blob_store.list_blobs()].count(blob_id) == 1
