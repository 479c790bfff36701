"""``iter_entries`` of the redis cache on a real 3-master Redis Cluster (for ``cascade blobs gc``):
every master's keyspace is walked with SCAN, each batch read with per-slot MGETs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cascade_redis import RedisCacheBackend

if TYPE_CHECKING:
    from .conftest import LocalCluster

pytestmark = pytest.mark.redis


def test_iter_entries_walks_every_master(cluster_uri: str, redis_cluster: LocalCluster) -> None:
    cache = RedisCacheBackend.from_uri(cluster_uri + "?prefix=gc")
    other = RedisCacheBackend.from_uri(cluster_uri + "?prefix=other")
    try:
        entries = {f"key-{i}": f"payload {i}".encode() for i in range(3000)}
        cache.set_many(entries)
        other.set_many({"key-1": b"not ours"})
        before = redis_cluster.command_calls()
        listed = list(cache.iter_entries())
        after = redis_cluster.command_calls()
    finally:
        cache.close()
        other.close()
    assert dict(listed) == entries and len(listed) == len(entries)
    for old, new in zip(before, after):  # each master walked, none with KEYS
        assert new.get("scan", 0) > old.get("scan", 0)
        assert new.get("keys", 0) == old.get("keys", 0)
