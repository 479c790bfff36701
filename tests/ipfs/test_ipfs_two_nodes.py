"""Two IPFS nodes on loopback, connected with swarm/connect (each listens on 127.0.0.1 only and
knows no other peer): a driver configured with node B, and a Dask worker process of such a
driver, read a result that a driver on node A wrote, fetched from A by the CID its reference
carries, one-block or multi-block, without computing it again (docs/blobs.md#ipfs, "Two nodes")."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import cascade_core as cs


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory, ipfs_node_class: Any) -> Iterator[tuple[Any, Any]]:
    a = ipfs_node_class(tmp_path_factory.mktemp("ipfs-a"), swarm=True)
    b = ipfs_node_class(tmp_path_factory.mktemp("ipfs-b"), swarm=True)
    try:
        a.start()
        b.start()
        b.call("swarm/connect", arg=f"/ip4/127.0.0.1/tcp/{a.swarm_port}/p2p/{a.peer_id}")
        yield a, b
    finally:
        a.stop()
        b.stop()


def _peers(node: Any) -> list[str]:
    return [peer["Peer"] for peer in node.call("swarm/peers").get("Peers") or []]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("size", "threshold"), [(300_000, "64KiB"), (3 * 2**20, None)], ids=["one-block", "multi-block-default-threshold"]
)
def test_a_driver_on_node_b_reads_what_a_driver_on_node_a_wrote(two_nodes, tmp_path, counter, size, threshold):
    a, b = two_nodes
    assert _peers(b) == [a.peer_id] and _peers(a) == [b.peer_id]  # each other, and no one else
    payload = os.urandom(size)

    @cs.task
    def make() -> bytes:
        counter.hit("make")
        return payload

    state = f"sqlite:///{tmp_path / 'state.db'}"
    folder = f"/t-{os.urandom(4).hex()}?peer_wait=20" + (f"&threshold={threshold}" if threshold else "")
    assert cs.run(make(), state_backend=state, blob_store=a.uri + folder, run_id="shared") == payload
    (reference,) = _references(tmp_path / "state.db")
    assert reference.locator is not None and (size <= 2**20) == reference.locator.startswith("bafkrei")
    assert _store(b, folder).record(reference.blob_id) is None  # node B's index does not have it
    assert cs.run(make(), state_backend=state, blob_store=b.uri + folder, run_id="shared") == payload
    assert counter["make"] == 1  # read through node B, fetched from A by the CID: not computed again


def _store(node: Any, folder: str) -> Any:
    from cascade_core.plugin import BackendURI
    from cascade_ipfs.store import IpfsBlobStore

    return IpfsBlobStore.from_uri(BackendURI.parse(node.uri + folder.split("?")[0]))


def _references(db: Any) -> list[Any]:
    """The parsed blob references of every stored result in a sqlite state file."""
    import sqlite3

    from cascade_core._store.blob_refs import parse_reference

    found = []
    with sqlite3.connect(db) as connection:
        for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in connection.execute(f"SELECT * FROM {table}"):
                for value in row:
                    if isinstance(value, bytes) and b"cascade-blob " in value:
                        found.append(parse_reference(value[value.index(b"cascade-blob ") :]))
    return found


@cs.task
def made(log: str, n: int) -> bytes:
    with open(log, "a") as out:
        out.write("made\n")
    return bytes(range(256)) * (n // 256)


@cs.task
def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_a_dask_worker_configured_with_node_b_reads_a_result_written_through_node_a(two_nodes, tmp_path):
    pytest.importorskip("cascade_dask")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes cannot import this module
    a, b = two_nodes
    log = str(tmp_path / "calls.log")
    state = f"sqlite:///{tmp_path / 'state.db'}"
    folder = f"/t-{os.urandom(4).hex()}?peer_wait=20"  # the default threshold: a multi-block blob
    size = 3 * 2**20 + 256
    assert len(cs.run(made(log, size), state_backend=state, blob_store=a.uri + folder, run_id="w")) == size
    # The same run id, now with node B and a worker in another process: made() is stored, so only
    # digest() runs, on the worker, which reads made()'s blob through node B (fetched from A).
    target = digest(made(log, size))
    executor = "dask+local://?n_workers=1&threads_per_worker=1&processes=true"
    got = cs.run(target, state_backend=state, blob_store=b.uri + folder, executor=executor, run_id="w")
    assert got == hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest()
    assert (tmp_path / "calls.log").read_text().split() == ["made"]  # made() ran once, on the driver of node A
