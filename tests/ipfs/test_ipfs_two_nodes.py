"""Two IPFS nodes on loopback, connected with swarm/connect (each listens on 127.0.0.1 only and
knows no other peer): a driver configured with node B reads a one-block result that a driver
on node A wrote, fetched from A by its CID; a multi-block result is not found through B and is
computed again (docs/blobs.md#ipfs, "Two nodes")."""

from __future__ import annotations

import os
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
@pytest.mark.parametrize(("size", "runs"), [(300_000, 1), (3 * 2**20, 2)], ids=["one-block", "multi-block"])
def test_a_driver_on_node_b_reads_what_a_driver_on_node_a_wrote(two_nodes, tmp_path, counter, size, runs):
    a, b = two_nodes
    assert _peers(b) == [a.peer_id] and _peers(a) == [b.peer_id]  # each other, and no one else
    payload = os.urandom(size)

    @cs.task
    def make() -> bytes:
        counter.hit("make")
        return payload

    state = f"sqlite:///{tmp_path / 'state.db'}"
    folder = f"/t-{os.urandom(4).hex()}?threshold=64KiB"
    assert cs.run(make(), state_backend=state, blob_store=a.uri + folder, run_id="shared") == payload
    assert cs.run(make(), state_backend=state, blob_store=b.uri + folder, run_id="shared") == payload
    assert counter["make"] == runs
