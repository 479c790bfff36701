"""RedisCacheBackend against a real redis-server."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

import cascade_core as cs
from cascade_core._errors import BackendUnavailableError, CascadeError, SerializationError
from cascade_core._store.protocols import CacheBackend, CacheCatalog
from cascade_redis import RedisCacheBackend

if TYPE_CHECKING:
    from redis_servers import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def cache(redis_uri: str) -> Iterator[RedisCacheBackend]:
    cache = RedisCacheBackend.from_uri(redis_uri)
    yield cache
    cache.close()


def server_keys(server: RedisServer) -> dict[str, int]:
    """Every key on the server with its TTL in milliseconds (-1: none)."""
    client = server.client()
    try:
        return {key.decode(): client.pttl(key) for key in client.scan_iter(count=1000)}
    finally:
        client.close()


def test_protocols(cache: RedisCacheBackend) -> None:
    assert isinstance(cache, CacheBackend) and isinstance(cache, CacheCatalog)


def test_round_trip(cache: RedisCacheBackend) -> None:
    assert cache.get_many(["a"]) == {} and cache.get_many([]) == {}
    cache.set_many({"a": b"\x00one", "b": b"", "ключ": b"3"})
    assert cache.get_many(["a", "b", "ключ", "zzz", "a"]) == {"a": b"\x00one", "b": b"", "ключ": b"3"}
    cache.set("a", b"new")
    assert cache.get("a") == b"new"
    assert cache.delete_many(["a", "b", "nope"]) == 2
    assert cache.delete_many([]) == 0
    assert cache.delete("ключ") is True and cache.delete("ключ") is False
    cache.set_many({})
    cache.close()
    cache.close()


def test_key_layout_and_ttls(redis_uri: str, redis_server: RedisServer) -> None:
    cache = RedisCacheBackend.from_uri(redis_uri + "?ttl=100&prefix=p")
    try:
        cache.set_many({"default": b"1"})
        cache.set_many({"short": b"2"}, ttl=0.5)
        # Not finite: refused, and nothing written.
        with pytest.raises(CascadeError, match="cache TTL must be a number of seconds"):
            cache.set_many({"forever": b"3"}, ttl=float("inf"))
        found = server_keys(redis_server)
        assert set(found) == {"p:cache:default", "p:cache:short"}
        assert 99_000 < found["p:cache:default"] <= 100_000
        assert 0 < found["p:cache:short"] <= 500
    finally:
        cache.close()


def test_no_default_ttl_means_no_expiry(cache: RedisCacheBackend, redis_server: RedisServer) -> None:
    cache.set_many({"k": b"v"})
    assert server_keys(redis_server) == {"cascade:cache:k": -1}


def test_expiry(cache: RedisCacheBackend, wait_until) -> None:
    cache.set_many({"k": b"v"}, ttl=0.05)
    assert cache.get_many(["k"]) == {"k": b"v"}
    wait_until(lambda: cache.get_many(["k"]) == {}, 5, "the entry to expire on the server's clock")
    cache.set_many({"k": b"v"})
    cache.set_many({"k": b"w"}, ttl=0)  # expired on arrival: the old value must not survive
    assert cache.get_many(["k"]) == {}


def test_batches_are_single_commands(cache: RedisCacheBackend, redis_server: RedisServer) -> None:
    keys = [f"key-{i}" for i in range(1000)]
    cache.get_many(["warm-up"])
    before = redis_server.command_calls()
    cache.set_many(dict.fromkeys(keys, b"x"), ttl=60)
    assert redis_server.calls_since(before) == {"set": 1000}
    before = redis_server.command_calls()
    assert len(cache.get_many(keys)) == 1000
    assert redis_server.calls_since(before) == {"mget": 1}
    before = redis_server.command_calls()
    assert cache.delete_many(keys) == 1000
    assert redis_server.calls_since(before) == {"del": 1}


def test_clear_by_prefix_uses_scan(cache: RedisCacheBackend, redis_server: RedisServer, redis_uri: str) -> None:
    cache.set_many({f"task-a/{i}": b"x" for i in range(2500)})
    cache.set_many({"task-b/1": b"y", "task*[x]/1": b"z"})
    other = RedisCacheBackend.from_uri(redis_uri + "?prefix=other")
    other.set_many({"task-a/1": b"kept"})
    before = redis_server.command_calls()
    assert cache.clear("task-a/") == 2500
    delta = redis_server.calls_since(before)
    assert "keys" not in delta and delta["scan"] >= 1 and delta["unlink"] == 3
    assert cache.clear("task*") == 1  # glob characters in a prefix are literal
    assert cache.get_many(["task-b/1"]) == {"task-b/1": b"y"}
    assert cache.clear() == 1
    assert other.get_many(["task-a/1"]) == {"task-a/1": b"kept"}
    assert cache.clear() == 0
    other.close()


def test_oversize_value_refused_before_anything_is_written(redis_uri: str, redis_server: RedisServer) -> None:
    cache = RedisCacheBackend.from_uri(redis_uri + "?max_value_size=1K")
    try:
        assert cache.max_payload_bytes == 1024
        with pytest.raises(SerializationError, match="'big'"):
            cache.set_many({"small": b"x", "big": b"x" * 1025})
        assert server_keys(redis_server) == {}
    finally:
        cache.close()


def test_closed_port_is_unavailable_fast(closed_port: int) -> None:
    cache = RedisCacheBackend.from_uri(f"redis://:hunter2@127.0.0.1:{closed_port}/0?retries=0")
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="is redis-server running") as info:
        cache.get_many(["k"])
    assert time.monotonic() - started < 1
    assert "hunter2" not in str(info.value) and ":***@" in str(info.value)
    cache.close()


def test_a_refused_cache_write_never_quotes_payload_bytes(own_redis_server, caplog):
    secret_bytes = b"PAYLOAD-BYTES-7d1c"
    with own_redis_server.client() as client:
        client.config_set("maxmemory", "1")  # every SET is refused with OOM
        client.config_set("maxmemory-policy", "noeviction")
    cache = RedisCacheBackend.from_uri(own_redis_server.uri + "?ttl=60")
    try:
        with pytest.raises(cs.BackendError) as error:
            cache.set_many({"k": secret_bytes + b"\xca\x5c" * 50})
        message = str(error.value)
        assert "maxmemory" in message and "PAYLOAD" not in message and "\\x" not in message and "\n" not in message

        @cs.task(cache=True, cache_lock=False, name="redsec.marked")
        def marked() -> str:
            return secret_bytes.decode() * 3

        caplog.set_level(logging.DEBUG, logger="cascade")
        with pytest.raises(cs.CascadeError) as run_error:
            cs.run(marked(), cache_backend=cache)
        shown = str(run_error.value) + "".join(r.getMessage() for r in caplog.records)
        assert "PAYLOAD-BYTES" not in shown and "maxmemory" in shown
    finally:
        cache.close()
