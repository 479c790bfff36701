"""The blob-store contract, for the blob store of ``--cascade-uri`` (docs/blobs.md).

Every test writes blobs of fresh random bytes, so it never meets another's, and deletes
what it wrote. Every failure names the rule broken and its section of the docs.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
from typing import Any

import pytest

import cascade_core as cs
from cascade_core.testing import executor_tasks as t
from cascade_core.testing.plugin import broken, open_new_blob_store, run_concurrently

TABLE = "docs/blobs.md#built-in-and-plugin-stores"
GC = "docs/blobs.md#housekeeping-cascade-blobs-du-and-cascade-blobs-gc"
REFERENCES = "docs/blobs.md#references"


def _blob(size: int = 1000) -> tuple[str, bytes]:
    data = os.urandom(size)
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def _listed(store, blob_ids) -> dict:
    return {info.blob_id: info for info in store.list_blobs() if info.blob_id in blob_ids}


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
        wrote = cascade_blob_store.put(blob_id, data)
        assert wrote is True, broken(
            f"put() of a new blob of {size} bytes returned {wrote!r}", "put returns whether it wrote", TABLE
        )
        assert cascade_blob_store.exists(blob_id), broken(
            f"exists() is false for a blob of {size} bytes just put", "exists: whether it is stored", TABLE
        )
        got = cascade_blob_store.get(blob_id)
        same = isinstance(got, bytes) and got == data  # a bool: no pytest diff of megabytes
        assert same, broken(
            f"get() of a blob of {size} bytes returned {type(got).__name__} of {len(got or b'')} bytes other than "
            "put() stored",
            "get returns the bytes, exactly as put",
            TABLE,
        )


def test_write_once_an_existing_blob_is_not_written_again(cascade_blob_store, written):
    blob_id, data = _blob()
    written.append(blob_id)
    cascade_blob_store.put(blob_id, data)
    again = cascade_blob_store.put(blob_id, b"other bytes under the same id")
    assert again is False, broken(
        f"put() of an id already stored returned {again!r}",
        "store data unless a blob of that id exists; return whether it wrote",
        TABLE,
    )
    same = cascade_blob_store.get(blob_id) == data  # a bool: no pytest diff of megabytes
    assert same, broken(
        "a second put() of an id replaced its bytes",
        "blobs are write-once: a blob that exists is not written again",
        TABLE,
    )


def test_put_of_an_existing_blob_refreshes_its_time(cascade_blob_store, written):
    refresh_after = getattr(cascade_blob_store, "refresh_after", 0)
    if refresh_after > 5:
        pytest.skip(f"the store refreshes only blobs older than {refresh_after:g} s (refresh_after): not waited for")
    blob_id, data = _blob()
    written.append(blob_id)
    cascade_blob_store.put(blob_id, data)
    first = _listed(cascade_blob_store, {blob_id})[blob_id].mtime
    time.sleep(max(1.1, refresh_after + 0.1))  # past a one-second resolution of modification times
    cascade_blob_store.put(blob_id, data)
    second = _listed(cascade_blob_store, {blob_id})[blob_id].mtime
    assert second > first, broken(
        f"a put() of a blob that exists left its modification time at {first} (listed again: {second})",
        "a put of an existing blob refreshes its modification time, so that gc's grace period starts over",
        TABLE,
    )


def test_missing_blobs(cascade_blob_store):
    blob_id, _ = _blob()
    rule = "get returns None, exists False and delete False when there is no such blob"
    assert cascade_blob_store.get(blob_id) is None, broken("get() of a missing blob returned bytes", rule, TABLE)
    assert cascade_blob_store.exists(blob_id) is False, broken("exists() of a missing blob is not False", rule, TABLE)
    assert cascade_blob_store.delete(blob_id) is False, broken("delete() of a missing blob is not False", rule, TABLE)


def test_delete(cascade_blob_store):
    blob_id, data = _blob()
    cascade_blob_store.put(blob_id, data)
    assert cascade_blob_store.delete(blob_id) is True, broken(
        "delete() of a stored blob did not return True", "delete: whether it existed", TABLE
    )
    gone = cascade_blob_store.get(blob_id) is None and not cascade_blob_store.exists(blob_id)
    assert gone, broken("a deleted blob can still be read", "delete removes the blob", TABLE)
    assert cascade_blob_store.put(blob_id, data) is True, broken(
        "put() after delete() did not write", "store data unless a blob of that id exists", TABLE
    )
    cascade_blob_store.delete(blob_id)


def test_listing_for_gc_has_ids_sizes_and_times(cascade_blob_store, written):
    blobs = dict(_blob(size) for size in (10, 2000, 30000))
    for blob_id, data in blobs.items():
        cascade_blob_store.put(blob_id, data)
        written.append(blob_id)
    listed = _listed(cascade_blob_store, blobs)
    rule = "list_blobs yields every blob: (blob_id, size, mtime)"
    assert set(listed) == set(blobs), broken(f"list_blobs() left out {len(blobs) - len(listed)} of 3 blobs", rule, GC)
    now = time.time()
    for blob_id, info in listed.items():
        assert info.size == len(blobs[blob_id]), broken(
            f"list_blobs() gave size {info.size} for a blob of {len(blobs[blob_id])} bytes", rule, TABLE
        )
        assert now - 3600 < info.mtime < now + 3600, broken(  # a store's clock may differ a little from ours
            f"list_blobs() gave mtime {info.mtime} for a blob written now ({now:.0f})",
            "mtime is Unix seconds (gc deletes by it)",
            TABLE,
        )


def test_concurrent_writers_of_one_blob(cascade_blob_store, written):
    blob_id, data = _blob(200_000)
    written.append(blob_id)
    results: list[bool] = []
    errors = run_concurrently(lambda _: results.append(cascade_blob_store.put(blob_id, data)), list(range(8)))
    rule = "put is atomic and safe with concurrent writers of the same id"
    assert errors == [], broken(f"8 concurrent put() of one blob raised {errors!r}", rule, TABLE)
    assert len(results) == 8 and any(results), broken(f"8 concurrent put() returned {results!r}", rule, TABLE)
    same = cascade_blob_store.get(blob_id) == data  # a bool: no pytest diff of megabytes
    assert same, broken("8 concurrent writers left other bytes", rule, TABLE)
    count = [info.blob_id for info in cascade_blob_store.list_blobs()].count(blob_id)
    assert count == 1, broken(f"8 concurrent writers left {count} listed copies", rule, TABLE)


def test_readers_never_see_part_of_a_blob(cascade_blob_store, written):
    blob_id, data = _blob(8 * 2**20)
    written.append(blob_id)
    writer = threading.Thread(target=cascade_blob_store.put, args=(blob_id, data))
    seen: list[int] = []
    writer.start()
    while writer.is_alive():
        got = cascade_blob_store.get(blob_id)
        if got is not None and got != data:
            seen.append(len(got))
    writer.join()
    assert seen == [], broken(
        f"a reader got {len(seen)} partial reads of an 8 MiB blob while it was written (sizes {seen[:5]})",
        "the write is atomic: no reader ever sees part of a blob under its id (write elsewhere, then rename; "
        "or upload in one request)",
        "docs/blobs.md#what-is-stored-where",
    )


def test_close_twice_is_harmless(cascade_uri, cascade_blob_store, written):
    blob_id, data = _blob()
    written.append(blob_id)
    other = open_new_blob_store(cascade_uri)
    other.put(blob_id, data)
    other.close()
    try:
        other.close()
    except Exception as exc:
        pytest.fail(broken(f"a second close() raised {type(exc).__name__}: {exc}", "close(): twice is harmless", TABLE))
    same = cascade_blob_store.get(blob_id) == data  # a bool: no pytest diff of megabytes
    assert same, broken(
        "closing one store object made another of the same URI lose a blob",
        "close() releases this store's connections only",
        TABLE,
    )


def test_reads_are_verified_against_the_id(cascade_blob_store, written):
    from cascade_core._store.blob_refs import BlobSpec, dereference

    blob_id, data = _blob()
    written.append(blob_id)
    cascade_blob_store.put(blob_id, data[:-1] + b"?")  # bytes that do not match their id
    spec = BlobSpec("kit", "kit", 1, cascade_blob_store)
    reference = f"cascade-blob {blob_id} {len(data)} p".encode()
    with pytest.raises(cs.IntegrityError, match="fails its hash"):
        dereference(spec, "state/kit/node", reference)
    assert cascade_blob_store.get(blob_id) is None, broken(
        "a blob that failed its hash is still there after the engine deleted it",
        "delete removes the blob (so a rerun writes it again)",
        TABLE,
    )


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
    where = "docs/blobs.md#what-is-stored-where"

    value = cs.run(t.after(payload), state_backend=store, blob_store=uri, run_id="kit")
    assert value == payload, broken("a run through the store returned other bytes", "get returns the bytes put", where)
    assert cascade_blob_store.get(blob_id) == body, broken(
        "the run's result is not in the store under its content id", "blobs are stored by content id", where
    )
    assert cs.run(t.after(payload), state_backend=store, blob_store=uri, run_id="kit-2") == payload
    count = [info.blob_id for info in cascade_blob_store.list_blobs()].count(blob_id)
    assert count == 1, broken(f"two runs of one value left {count} listed blobs", "a blob is stored once", where)


def test_locators_find_what_the_store_wrote(cascade_blob_store, written):
    from cascade_core.plugin import BlobLocators, is_locator

    if not isinstance(cascade_blob_store, BlobLocators):
        pytest.skip("optional capability: the store has no BlobLocators (locate, get_located, exists_located)")
    rule = "a locator is printable ASCII without spaces, and get_located reads what it names"
    blob_id, data = _blob(3 * 2**20)
    written.append(blob_id)
    store: Any = cascade_blob_store  # a BlobStore that is BlobLocators too
    store.put(blob_id, data)
    locator = cascade_blob_store.locate(blob_id)
    assert locator is None or is_locator(locator), broken(f"locate() gave {locator!r}", rule, REFERENCES)
    if locator is not None:
        assert cascade_blob_store.exists_located(blob_id, locator) is True, broken(
            "exists_located() of a blob's own locator is not True", rule, REFERENCES
        )
        assert cascade_blob_store.get_located(blob_id, locator) == data, broken(
            "get_located() of a blob's own locator did not return its bytes", rule, REFERENCES
        )
    nothing = "cascade-kit-no-such-locator"
    missing = cascade_blob_store.get_located(blob_id, nothing) is None
    assert missing and not cascade_blob_store.exists_located(blob_id, nothing), broken(
        "a locator that names nothing is not None / False", "a wrong locator is a miss, not an error", REFERENCES
    )
