"""The CID in a blob reference (BlobLocators, docs/blobs.md#references) on one real node: written
by every ipfs:// store, read first, and a CID that names other bytes or nothing falls back to the
index by blob id (a miss or a rerun, never a wrong result or a crash)."""

from __future__ import annotations

import hashlib
import os
import time

import cascade_core as cs
from cascade_core._store.blob_refs import parse_reference
from cascade_core.plugin import BlobLocators, parse_uri
from cascade_ipfs import cid as cids
from cascade_ipfs.store import IpfsBlobStore


def _blob(size: int) -> tuple[str, bytes]:
    data = os.urandom(size)
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def test_the_locator_is_the_cid_and_a_store_reads_by_it_without_an_index_entry(ipfs_uri):
    writer = IpfsBlobStore.from_uri(parse_uri(ipfs_uri))
    reader = IpfsBlobStore.from_uri(parse_uri(ipfs_uri + "-other"))  # another index: knows nothing
    try:
        assert isinstance(writer, BlobLocators)
        blob_id, data = _blob(3 * 2**20)
        writer.put(blob_id, data)
        locator = writer.locate(blob_id)
        record = writer.record(blob_id)
        assert record is not None and locator == record.cid and locator.startswith("bafybei")
        fresh = IpfsBlobStore.from_uri(parse_uri(ipfs_uri))  # nothing remembered: locate reads the index
        assert fresh.locate(blob_id) == locator and fresh.locate(_blob(10)[0]) is None
        assert reader.get(blob_id) is None  # by id: not in its index, and multi-block (no derivable CID)
        assert reader.exists_located(blob_id, locator) and reader.get_located(blob_id, locator) == data
    finally:
        writer.close()
        reader.close()


def test_a_locator_that_is_no_cid_or_names_nothing_is_a_miss(ipfs_uri):
    store = IpfsBlobStore.from_uri(parse_uri(ipfs_uri + "?peer_wait=0.5"))
    try:
        blob_id, _ = _blob(100)
        absent = cids.raw_cid(os.urandom(100))  # a well-formed CID of bytes no one has
        assert store.get_located(blob_id, "not-a-cid") is None and not store.exists_located(blob_id, "not-a-cid")
        started = time.monotonic()
        assert store.get_located(blob_id, absent) is None and not store.exists_located(blob_id, absent)
        assert time.monotonic() - started < 10  # bounded by peer_wait, not the 30 s timeout
    finally:
        store.close()


def _reference(tmp_path, run_id: str = "r") -> bytes:
    from cascade_core.backends.sqlite import SqliteStateStore

    with SqliteStateStore(tmp_path / "state.db") as store:
        backend = store(run_id)
        (payload,) = backend.get_results(list(backend.result_ids())).values()
        backend.close()
    return bytes(payload[payload.index(b"cascade-blob ") :])


def test_a_reference_whose_cid_names_other_bytes_is_read_by_id_then_recomputed_when_that_fails_too(
    ipfs_uri, tmp_path, counter, monkeypatch
):
    payload = os.urandom(200_000)

    def produce() -> bytes:
        counter.hit("make")
        return payload

    make = cs.task(produce)
    options = {"state_backend": f"sqlite:///{tmp_path / 'state.db'}", "run_id": "r"}
    uri = ipfs_uri + "?threshold=64KiB&peer_wait=1"
    store = IpfsBlobStore.from_uri(parse_uri(ipfs_uri))
    try:
        other_id, other = _blob(200_000)
        store.put(other_id, other)
        wrong = store.locate(other_id)
        with monkeypatch.context() as patch:
            patch.setattr(IpfsBlobStore, "locate", lambda self, blob_id: wrong)
            assert cs.run(make(), blob_store=uri, **options) == payload
        reference = parse_reference(_reference(tmp_path))
        assert counter["make"] == 1 and reference is not None and reference.locator == wrong
        # The reference names other bytes: they fail the SHA-256, the blob is read by its id instead.
        assert cs.run(make(), blob_store=uri, **options) == payload
        assert counter["make"] == 1
        # Now the index names other bytes too: a corrupt blob, deleted, and the task runs again.
        good = store.record(reference.blob_id)
        assert good is not None
        store._write_file(store._entry(reference.blob_id), good._replace(cid=wrong).line())
        assert cs.run(make(), blob_store=uri, **options) == payload
        assert counter["make"] == 2
        again = store.record(reference.blob_id)
        assert again is not None and again.cid == good.cid
    finally:
        store.close()
