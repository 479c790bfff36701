"""ipfs:// blob stores against a real node: CIDs, pinning, the index, deduplication, verified reads,
and `cascade blobs du` / `gc` / `backends check` (docs/blobs.md#ipfs)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import pytest
from cascade_test_cli import FLOW_HEAD, calls, ok, write_flow

import cascade_core as cs
from cascade_core.plugin import parse_uri
from cascade_ipfs import cid as cids
from cascade_ipfs.store import CHUNK, IpfsBlobStore

FLOW = (
    FLOW_HEAD
    + """
@cs.task(cache=True)
def blob(seed: int) -> bytes:
    note("blob")
    return bytes([seed]) * 300_000


def pipeline(seed: int = 1):
    return cs.task(len)(blob(seed))
"""
)


def _blob(size: int) -> tuple[str, bytes]:
    data = os.urandom(size)
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


@pytest.fixture
def opened():
    """opened(uri) -> a store of that URI, closed after the test."""
    stores: list[IpfsBlobStore] = []

    def open_store(uri: str) -> IpfsBlobStore:
        stores.append(IpfsBlobStore.from_uri(parse_uri(uri)))
        return stores[-1]

    yield open_store
    for store in stores:
        store.close()


def test_a_one_block_blob_has_the_cid_computed_locally_and_a_larger_one_a_unixfs_root(ipfs_node, ipfs_uri, opened):
    store = opened(ipfs_uri)
    small_id, small = _blob(CHUNK)
    assert store.put(small_id, small) is True
    record = store.record(small_id)
    assert record is not None and record.cid == cids.raw_cid(small) and record.cid.startswith("bafkrei")
    # The node itself, asked straight, names the same block: CIDv1, raw codec, the bytes' SHA-256.
    stat = ipfs_node.call("block/stat", arg=record.cid)
    assert stat["Size"] == CHUNK and cids.canonical(stat["Key"]) == record.cid
    assert cids.decode(record.cid)[4:] == hashlib.sha256(small).digest()

    large_id, large = _blob(CHUNK + 1)
    store.put(large_id, large)
    root = store.record(large_id)
    assert root is not None and root.cid.startswith("bafybei") and root.size == CHUNK + 1  # dag-pb over raw leaves
    assert store.get(large_id) == large
    assert [cids.canonical(link)[:7] for link in ipfs_node.refs(root.cid)] == ["bafkrei", "bafkrei"]


def test_blobs_are_pinned_and_delete_unpins_them(ipfs_node, ipfs_uri, opened):
    store = opened(ipfs_uri)
    blob_id, data = _blob(5000)
    store.put(blob_id, data)
    record = store.record(blob_id)
    assert record is not None and record.cid in ipfs_node.pinned()
    assert [info.blob_id for info in store.list_blobs()] == [blob_id]
    assert store.delete(blob_id) is True
    assert record.cid not in ipfs_node.pinned() and store.get(blob_id) is None and not store.exists(blob_id)

    unpinned = opened(ipfs_uri + "?pin=false")
    blob_id, data = _blob(5000)
    assert unpinned.put(blob_id, data) is True and unpinned.get(blob_id) == data
    record = unpinned.record(blob_id)
    assert record is not None and record.cid not in ipfs_node.pinned()


def test_a_second_run_of_the_same_result_adds_no_block(ipfs_node, ipfs_uri, tmp_path, counter, opened):
    payload = os.urandom(3 * CHUNK)  # four blocks: three leaves and their root (the pickle adds a few bytes)

    @cs.task
    def make() -> bytes:
        counter.hit("make")
        return payload

    state = f"sqlite:///{tmp_path / 'state.db'}"
    assert cs.run(make(), state_backend=state, blob_store=ipfs_uri, run_id="first") == payload
    blocks = ipfs_node.blocks()
    store = opened(ipfs_uri)
    ((blob_id, size, first_time),) = store.list_blobs()
    assert cs.run(make(), state_backend=state, blob_store=ipfs_uri, run_id="second") == payload
    assert counter["make"] == 2  # another run id: the task ran again and produced the same bytes
    assert ipfs_node.blocks() == blocks  # ...which added nothing to the node: only the index entry's time moved
    ((again, _, second_time),) = store.list_blobs()
    assert again == blob_id and second_time == first_time  # written less than refresh_after ago


def test_reusing_an_old_blob_refreshes_its_time_and_a_recent_one_is_left_alone(ipfs_node, ipfs_uri, opened):
    store = opened(ipfs_uri)
    blob_id, data = _blob(1000)
    store.put(blob_id, data)
    record = store.record(blob_id)
    assert record is not None
    blocks = ipfs_node.blocks()
    assert store.put(blob_id, data) is False and store.record(blob_id) == record and ipfs_node.blocks() == blocks
    old = record.mtime - store.refresh_after - 1
    store._write_file(store._entry(blob_id), record._replace(mtime=old).line())
    assert store.put(blob_id, data) is False
    refreshed = store.record(blob_id)
    assert refreshed is not None and refreshed.cid == record.cid and refreshed.mtime >= record.mtime


def test_a_node_that_returns_other_bytes_makes_the_task_run_again(ipfs_uri, tmp_path, counter, opened):
    """An index entry that names other bytes (as a node that answered wrongly would give them): the
    read fails its SHA-256, the entry is deleted, and the task runs again as for a corrupt file:// blob."""
    payload = os.urandom(200_000)

    @cs.task
    def make() -> bytes:
        counter.hit("make")
        return payload

    state = f"sqlite:///{tmp_path / 'state.db'}"
    uri = ipfs_uri + "?threshold=64KiB"
    assert cs.run(make(), state_backend=state, blob_store=uri, run_id="r") == payload
    store = opened(ipfs_uri)
    ((blob_id, _, _),) = store.list_blobs()
    other_id, other = _blob(200_000)
    store.put(other_id, other)
    good = store.record(blob_id)
    wrong = store.record(other_id)
    assert good is not None and wrong is not None
    store._write_file(store._entry(blob_id), good._replace(cid=wrong.cid).line())
    assert cs.run(make(), state_backend=state, blob_store=uri, run_id="r") == payload
    assert counter["make"] == 2
    assert pickle.loads(store.get(blob_id) or b"") == payload  # written again, under its own CID
    record = store.record(blob_id)
    assert record is not None and record.cid == good.cid


@pytest.mark.slow
def test_du_counts_the_pinned_blobs_and_gc_unpins_the_unreferenced(ipfs_node, ipfs_uri, tmp_path, opened):
    write_flow(tmp_path, FLOW)
    blobs = ["--blobs", ipfs_uri + "?threshold=64KiB"]
    state = ["--state", "sqlite:///runs.db", "--cache", "sqlite:///runs.db"]
    ok(tmp_path, "run", "flow.py:pipeline", *state, *blobs, "--run-id", "keep")
    ok(tmp_path, "run", "flow.py:pipeline", "-p", "seed=2", *state, *blobs, "--run-id", "gone")
    assert calls(tmp_path)["blob"] == 2
    du = json.loads(ok(tmp_path, "blobs", "du", *blobs, "--json").stdout)
    assert du["count"] == 2 and du["bytes"] > 600_000
    ok(tmp_path, "runs", "forget", "gone", "--state", "sqlite:///runs.db")
    ok(tmp_path, "cache", "clear", "--cache", "sqlite:///runs.db")
    store = opened(ipfs_uri)
    records = {info.blob_id: store.record(info.blob_id) for info in store.list_blobs()}
    done = json.loads(ok(tmp_path, "blobs", "gc", *blobs, *state, "--older-than", "0", "--json").stdout)
    (deleted,) = done["deleted"]
    assert done["referenced"] == 1
    gone, kept = records[deleted], next(r for blob_id, r in records.items() if blob_id != deleted)
    assert gone is not None and kept is not None
    pinned = ipfs_node.pinned()
    assert gone.cid not in pinned and kept.cid in pinned  # unpinned: the node's own GC may now free it
    assert json.loads(ok(tmp_path, "blobs", "du", *blobs, "--json").stdout)["count"] == 1
    ok(tmp_path, "run", "flow.py:pipeline", *state, *blobs, "--run-id", "keep")
    assert calls(tmp_path)["blob"] == 2  # the kept run still reads its blob back


def test_backends_check_prints_the_node_version(ipfs_node, ipfs_uri, tmp_path):
    version = ipfs_node.call("version")["Version"]
    done = ok(tmp_path, "backends", "check", ipfs_uri)
    assert f"{ipfs_uri} blobs: ok" in done.stdout and f"IPFS node version {version}" in done.stdout


def test_a_gateway_store_reads_through_the_gateway_and_refuses_writes(ipfs_node, ipfs_uri, opened):
    writer = opened(ipfs_uri)
    blob_id, data = _blob(3 * CHUNK // 2)
    writer.put(blob_id, data)
    reader = opened(f"{ipfs_uri}?gateway={ipfs_node.gateway}")
    assert reader.get(blob_id) == data and reader.exists(blob_id)
    with pytest.raises(cs.BackendError, match="read-only: cannot write"):
        reader.put(*_blob(10))
