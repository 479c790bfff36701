"""Large results with redis:// state and cache and a file:// blob store, on a real redis-server."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import cascade_core as cs

pytestmark = pytest.mark.redis


def _used_memory(redis_server) -> int:
    with redis_server.client() as client:
        return int(client.info("memory")["used_memory"])


def test_results_over_the_redis_limit_work_with_a_blob_store(redis_server, redis_uri, tmp_path: Path):
    calls = []

    @cs.task(cache=True)
    def big(seed: int) -> bytes:
        calls.append(seed)
        return bytes([seed]) * 3_000_000

    @cs.task
    def total(parts: list) -> int:
        return sum(len(p) for p in parts)

    state = redis_uri + "?max_value_size=1M"
    with pytest.raises(cs.TaskFailed, match="over the state backend's limit of 1048576 bytes"):
        cs.run(big(0), state_backend=state, cache_backend=state)
    blobs = f"file://{tmp_path / 'blobs'}"
    before = _used_memory(redis_server)
    target = total([big(i) for i in range(1, 6)])
    assert cs.run(target, state_backend=state, cache_backend=state, blob_store=blobs, run_id="r") == 15_000_000
    grown = _used_memory(redis_server) - before
    assert grown < 64 * 1024, grown  # references only: state and cache of 5 results of 3 MB
    assert len(list((tmp_path / "blobs").rglob("*"))) > 5
    with redis_server.client() as client:
        sizes = [client.memory_usage(key) or 0 for key in client.scan_iter("*")]
    assert max(sizes) < 4096
    # A warm rerun with another run id: cache hits through references, no task runs, no blob written.
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "blobs").rglob("*") if p.is_file()}
    assert cs.run(target, state_backend=state, cache_backend=state, blob_store=blobs, run_id="r2") == 15_000_000
    assert sorted(calls) == [0, 1, 2, 3, 4, 5]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "blobs").rglob("*") if p.is_file()}.keys() == mtimes.keys()


@pytest.mark.slow
def test_a_300_mb_result_with_redis_state_and_a_file_blob_store(redis_server, redis_uri, tmp_path: Path):
    @cs.task
    def huge() -> bytes:
        return b"\x07" * 300_000_000

    @cs.task
    def size(data: bytes) -> int:
        return len(data)

    blobs = f"file://{tmp_path / 'blobs'}"
    with pytest.raises(cs.TaskFailed, match="over the state backend's limit"):
        cs.run(huge(), state_backend=redis_uri, cache_backend=redis_uri)
    before = _used_memory(redis_server)
    assert cs.run(size(huge()), state_backend=redis_uri, blob_store=blobs, run_id="big") == 300_000_000
    assert _used_memory(redis_server) - before < 64 * 1024
    (blob,) = [p for p in (tmp_path / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert blob.stat().st_size == len(pickle.dumps(b"\x07" * 300_000_000, protocol=pickle.HIGHEST_PROTOCOL))

    @cs.task
    def head(data: bytes) -> bytes:
        return data[:3]

    assert cs.run(head(huge()), state_backend=redis_uri, blob_store=blobs, run_id="big") == b"\x07" * 3
