"""``cascade blobs gc`` with a redis:// cache: the cache lists its entries (``iter_entries``) with
SCAN in batches, on a real redis-server, and gc keeps what they reference."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core._store import blob_refs
from cascade_redis import RedisCacheBackend

pytestmark = pytest.mark.redis


def _commandstats(redis_server) -> dict[str, int]:
    with redis_server.client() as client:
        return {name: int(stats["calls"]) for name, stats in client.info("commandstats").items()}


def test_iter_entries_lists_every_live_entry_of_its_prefix_in_batches(redis_server, redis_uri, wait_until):
    cache = RedisCacheBackend.from_uri(redis_uri + "?prefix=gc*[x]")  # glob characters in the prefix
    other = RedisCacheBackend.from_uri(redis_uri + "?prefix=gc")
    try:
        entries = {f"key-{i}": f"payload {i}".encode() for i in range(2500)}
        cache.set_many(entries)
        cache.set_many({"gone": b"expired"}, ttl=0.05)
        other.set_many({"key-x": b"another prefix"})
        wait_until(lambda: not cache.get_many(["gone"]), 5, "the short-lived entry to expire")
        with redis_server.client() as client:
            client.config_resetstat()
        listed = list(cache.iter_entries())
        stats = _commandstats(redis_server)
    finally:
        cache.close()
        other.close()
    assert dict(listed) == entries
    assert len(listed) == len(entries)  # each entry once
    assert "cmdstat_keys" not in stats
    assert stats["cmdstat_scan"] >= 3  # 2500 entries in pages of about 1000
    assert stats["cmdstat_mget"] >= 3


def test_iter_entries_of_an_empty_cache_is_empty(redis_uri):
    cache = RedisCacheBackend.from_uri(redis_uri)
    try:
        assert list(cache.iter_entries()) == []
    finally:
        cache.close()


def test_iter_entries_of_a_stopped_server_raises_a_cascade_error(own_redis_server):
    cache = RedisCacheBackend.from_uri(own_redis_server.uri + "?retries=1&socket_timeout=1&socket_connect_timeout=1")
    try:
        cache.set_many({"k": b"v"})
        own_redis_server.kill()
        with pytest.raises(cs.BackendUnavailableError, match="is unavailable after 1 retries"):
            list(cache.iter_entries())
    finally:
        cache.close()


CALLS: list[int] = []


@cs.task(cache=True)
def blob(seed: int) -> bytes:
    CALLS.append(seed)
    return bytes([seed]) * 300_000


def _cascade(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE", "CASCADE_BLOBS")}
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file())


def test_gc_with_a_redis_cache_keeps_what_its_entries_reference(redis_uri, tmp_path: Path):
    CALLS.clear()
    root = tmp_path / "blobs"
    blobs = f"file://{root}?threshold=64KiB"
    # The run's state is thrown away (memory://): only the redis cache entry references its blob.
    assert cs.run(blob(1), state_backend="memory://", cache_backend=redis_uri, blob_store=blobs) == bytes([1]) * 300_000
    (kept,) = _files(root)
    store = blob_refs.resolve_blobs(blobs).store
    orphan = bytes([9]) * 100_000
    orphan_id = "sha256:" + hashlib.sha256(orphan).hexdigest()
    assert store.put(orphan_id, orphan)
    old = time.time() - 7200
    for path in _files(root):
        os.utime(path, (old, old))  # both outside the grace period
    args = ["blobs", "gc", "--blobs", blobs, "--state", "none", "--cache", redis_uri, "--older-than", "1h", "--json"]
    dry = _cascade([*args, "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["deleted"] == [orphan_id] and len(_files(root)) == 2
    done = _cascade(args, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["deleted"] == [orphan_id] and report["referenced"] == 1 and report["count"] == 2
    assert _files(root) == [kept] and not store.exists(orphan_id)
    # The cache entry still resolves through its blob: a warm run hits, nothing is computed again.
    assert cs.run(blob(1), state_backend="memory://", cache_backend=redis_uri, blob_store=blobs) == bytes([1]) * 300_000
    assert CALLS == [1]
