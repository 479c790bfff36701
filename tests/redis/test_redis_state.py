"""RedisStateStore and RedisStateBackend against a real redis-server."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

import cascade_core as cs
from cascade_core._errors import BackendUnavailableError, CascadeError, SerializationError
from cascade_core._store.protocols import RunCatalog, StateBackend
from cascade_redis import RedisStateStore

if TYPE_CHECKING:
    from redis_servers import RedisServer

pytestmark = pytest.mark.redis

PASSWORD = "s3cret-Pa55word"  # the auth_redis_server's (see conftest.py)


@pytest.fixture
def store(redis_uri: str) -> Iterator[RedisStateStore]:
    store = RedisStateStore.from_uri(redis_uri + "?state_ttl=1000")
    yield store
    store.close()


@contextlib.contextmanager
def count_sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count what the client sends: a pipeline is one send, whatever its length."""
    import redis.connection

    sends: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):  # type: ignore[no-untyped-def]
        sends.append(1)
        return original(self, command, check_health)

    with monkeypatch.context() as patch:
        patch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
        yield sends


def keys(server: RedisServer) -> set[str]:
    client = server.client()
    try:
        return {key.decode() for key in client.scan_iter(count=1000)}
    finally:
        client.close()


def ttls(server: RedisServer, names: list[str]) -> list[int]:
    client = server.client()
    try:
        return [client.ttl(name) for name in names]
    finally:
        client.close()


def test_protocols(store: RedisStateStore) -> None:
    assert isinstance(store("r"), StateBackend)
    assert isinstance(store, RunCatalog)


def test_round_trip(store: RedisStateStore) -> None:
    backend = store("run-1")
    assert backend.result_ids() == set() and backend.get_run_info() == {} and backend.get_skip_reasons() == {}
    payloads = {"a": b"\x00\xff binary", "b": b"", "ünï": "ü".encode()}
    backend.put_results(payloads)
    assert backend.get_results(["a", "b", "ünï", "missing"]) == payloads
    assert backend.get_results(iter(["a", "a"])) == {"a": payloads["a"]}
    assert backend.get_results([]) == {}
    assert backend.result_ids() == set(payloads)
    backend.put_result("a", b"new")
    assert backend.get_result("a") == b"new" and backend.has_result("b")
    backend.mark_skipped({"c": "upstream failed: a", "d": "not needed"})
    assert backend.get_skip_reasons() == {"c": "upstream failed: a", "d": "not needed"}
    backend.set_run_info({"status": "running", "target": "pkg.flow"})
    backend.set_run_info({"status": "succeeded"})
    info = backend.get_run_info()
    assert info["status"] == "succeeded" and info["target"] == "pkg.flow"
    assert info["created"] <= info["updated"]
    # Another backend for the same run id (a resumed run) sees everything.
    again = store("run-1")
    assert again.result_ids() == set(payloads) and again.get_run_info() == info
    assert store("run-2").result_ids() == set()
    backend.close()
    backend.close()


def test_created_is_kept_and_updated_moves(store: RedisStateStore) -> None:
    backend = store("r")
    backend.put_results({"a": b"1"})
    first = backend.get_run_info()
    time.sleep(0.01)
    backend.mark_skipped({"b": "x"})
    second = backend.get_run_info()
    assert second["created"] == first["created"] and second["updated"] > first["updated"]
    backend.set_run_info({"created": "given"})
    assert backend.get_run_info()["created"] == "given"


def test_key_layout_and_hash_tag(store: RedisStateStore, redis_server: RedisServer) -> None:
    from redis.crc import key_slot

    backend = store("run:{odd}")
    backend.put_results({"a": b"1"})
    backend.mark_skipped({"b": "why"})
    backend.put_task_records({"a": "{}"})
    expected = {
        "cascade:run:{run:{odd}}:results",
        "cascade:run:{run:{odd}}:skipped",
        "cascade:run:{run:{odd}}:meta",
        "cascade:run:{run:{odd}}:tasks",
    }
    assert keys(redis_server) == expected
    assert len({key_slot(name.encode()) for name in expected}) == 1
    assert [run["run_id"] for run in store.list_runs()] == ["run:{odd}"]


def test_prefix(redis_uri: str, redis_server: RedisServer) -> None:
    store = RedisStateStore.from_uri(redis_uri + "?prefix=team*a")
    try:
        store("r").put_results({"a": b"1"})
        other = RedisStateStore.from_uri(redis_uri)
        other("r2").put_results({"a": b"1"})
        assert keys(redis_server) >= {"team*a:run:{r}:results", "cascade:run:{r2}:results"}
        assert [run["run_id"] for run in store.list_runs()] == ["r"]
        assert [run["run_id"] for run in other.list_runs()] == ["r2"]
        other.close()
    finally:
        store.close()


def test_every_key_has_a_ttl_refreshed_on_write(
    store: RedisStateStore, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cascade_redis import state

    monkeypatch.setattr(state, "REFRESH_INTERVAL", 0.0)  # every write refreshes (see the next test)
    backend = store("r")
    backend.put_results({"a": b"1"})
    backend.mark_skipped({"b": "x"})
    names = sorted(keys(redis_server))
    assert len(names) == 3
    assert all(0 < ttl <= 1000 for ttl in ttls(redis_server, names))
    client = redis_server.client()
    try:
        for name in names:
            client.expire(name, 5)
    finally:
        client.close()
    for write in (
        lambda: backend.put_results({"c": b"3"}),
        lambda: backend.mark_skipped({"d": "y"}),
        lambda: backend.set_run_info({"status": "failed"}),
    ):
        write()
        assert all(ttl > 900 for ttl in ttls(redis_server, names))
        client = redis_server.client()
        try:
            client.expire(names[0], 5)
        finally:
            client.close()


def test_put_results_is_one_pipeline(
    store: RedisStateStore, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = store("r")
    backend.get_run_info()  # connect first: the handshake is not part of the hot path

    before = redis_server.command_calls()
    with count_sends(monkeypatch) as sends:
        backend.put_results({f"node-{i}": b"x" * 10 for i in range(1000)})
    assert redis_server.calls_since(before) == {"hset": 2, "hsetnx": 1, "expire": 4}
    assert len(sends) == 1  # one round trip

    before = redis_server.command_calls()
    with count_sends(monkeypatch) as sends:
        found = backend.get_results([f"node-{i}" for i in range(1000)] + ["missing"])
    assert len(found) == 1000
    assert redis_server.calls_since(before) == {"hmget": 1}
    assert len(sends) == 1


def test_huge_get_results_is_chunked_into_one_pipeline(
    store: RedisStateStore, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cascade_redis.state

    monkeypatch.setattr(cascade_redis.state, "HMGET_CHUNK", 100)
    backend = store("r")
    backend.put_results({f"n{i}": str(i).encode() for i in range(250)})
    before = redis_server.command_calls()
    found = backend.get_results([f"n{i}" for i in range(260)])
    assert redis_server.calls_since(before) == {"hmget": 3}
    assert found == {f"n{i}": str(i).encode() for i in range(250)}


def test_reads_are_single_commands(store: RedisStateStore, redis_server: RedisServer) -> None:
    backend = store("r")
    backend.put_results({"a": b"1"})
    before = redis_server.command_calls()
    backend.result_ids()
    backend.get_skip_reasons()
    backend.get_run_info()
    backend.put_results({})
    backend.mark_skipped({})
    backend.get_results([])
    assert redis_server.calls_since(before) == {"hkeys": 1, "hgetall": 2}


def test_list_and_delete_runs(store: RedisStateStore) -> None:
    for index, run_id in enumerate(["one", "two", "three"]):
        backend = store(run_id)
        backend.put_results({str(n): b"x" for n in range(index)})
        backend.set_run_info({"status": "succeeded"})
        time.sleep(0.002)
    runs = store.list_runs()
    assert [run["run_id"] for run in runs] == ["one", "two", "three"]  # oldest first
    assert [run["results"] for run in runs] == ["0", "1", "2"]
    assert all(run["status"] == "succeeded" and run["created"] for run in runs)
    assert store.delete_run("two") is True
    assert store.delete_run("two") is False
    assert [run["run_id"] for run in store.list_runs()] == ["one", "three"]
    assert store("two").result_ids() == set()


def test_oversize_result_refused_before_anything_is_written(redis_uri: str, redis_server: RedisServer) -> None:
    store = RedisStateStore.from_uri(redis_uri + "?max_value_size=1K")
    try:
        backend = store("r")
        assert backend.max_payload_bytes == 1024
        with pytest.raises(SerializationError, match="max_value_size") as info:
            backend.put_results({"small": b"x" * 10, "big": b"x" * 1025})
        assert "'big'" in str(info.value)
        assert keys(redis_server) == set()
        backend.put_results({"exact": b"x" * 1024})
        assert backend.result_ids() == {"exact"}
    finally:
        store.close()


def test_closed_port_is_unavailable_fast(closed_port: int) -> None:
    store = RedisStateStore.from_uri(f"redis://:{PASSWORD}@127.0.0.1:{closed_port}/0")
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        store("r").put_results({"a": b"1"})
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "redis://:***@127.0.0.1:" in message and "is redis-server running? check host/port" in message
    assert PASSWORD not in message and "\n" not in message
    with pytest.raises(BackendUnavailableError):
        store.list_runs()
    store.close()


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_wrong_or_missing_password(auth_redis_server: RedisServer, password: str | None) -> None:
    auth = f":{password}@" if password else ""
    store = RedisStateStore.from_uri(f"redis://{auth}127.0.0.1:{auth_redis_server.port}/0")
    try:
        with pytest.raises(CascadeError) as info:
            store("r").result_ids()
        message = str(info.value)
        assert "password" in message and "\n" not in message
        assert (password or PASSWORD) not in message
        if password:
            assert "***" in message
    finally:
        store.close()


def test_right_password(auth_redis_server: RedisServer) -> None:
    auth_redis_server.flushall()
    store = RedisStateStore.from_uri(auth_redis_server.uri)
    try:
        store("r").put_results({"a": b"1"})
        assert store("r").get_results(["a"]) == {"a": b"1"}
        assert PASSWORD not in repr(store) and PASSWORD not in repr(store("r"))
    finally:
        store.close()


def test_close_then_reuse_reconnects(store: RedisStateStore) -> None:
    store("r").put_results({"a": b"1"})
    store.close()
    assert store("r").result_ids() == {"a"}


def test_server_restart_is_survived(own_redis_server: RedisServer) -> None:
    store = RedisStateStore.from_uri(own_redis_server.uri)
    try:
        store("r").put_results({"a": b"1"})
        own_redis_server.restart(appendonly=True)  # a clean stop writes nothing: the data is gone
        store("r").put_results({"b": b"2"})  # the stale pooled connection is retried, not an error
        assert store("r").result_ids() == {"b"}
        own_redis_server.kill()
        with pytest.raises(BackendUnavailableError):
            store("r").result_ids()
        own_redis_server.start(appendonly=True)
        assert store("r").result_ids() == {"b"}  # the append-only file kept it
    finally:
        store.close()


def test_backends_of_a_store_share_one_pool_closed_by_the_store(store: RedisStateStore) -> None:
    one, two = store("a"), store("b")
    one.put_results({"x": b"1"})
    two.put_results({"x": b"2"})
    pool = store.connection.client.connection_pool
    assert one._connection is two._connection is store.connection
    assert len(pool._available_connections) == 1  # sequential calls reuse one connection
    one.close()  # a backend's close leaves the shared pool alone
    assert store.connection._client is not None
    store.close()
    assert store.connection._client is None
    assert all(connection._sock is None for connection in pool._available_connections)


def test_unix_socket(redis_uri: str, redis_server: RedisServer) -> None:
    store = RedisStateStore.from_uri(f"redis+unix://{redis_server.socket_path}?db=1")
    try:
        store("r").put_results({"a": b"1"})
        assert store("r").get_results(["a"]) == {"a": b"1"}
        import redis

        client = redis.Redis(unix_socket_path=str(redis_server.socket_path), db=1)
        try:
            assert client.exists("cascade:run:{r}:results") == 1
        finally:
            client.close()
    finally:
        store.close()


def test_quick_successive_results_cost_one_command_each(store: RedisStateStore, redis_server: RedisServer) -> None:
    backend = store("quick")
    backend.put_results({"first": b"1"})  # the first write stamps meta and sets every TTL
    before = redis_server.command_calls()
    for i in range(20):
        backend.put_results({f"n{i}": b"x"})
    assert redis_server.calls_since(before) == {"hset": 20}
    assert len(backend.result_ids()) == 21
    assert all(ttl > 0 for ttl in ttls(redis_server, sorted(keys(redis_server))))


def test_a_refused_state_write_never_quotes_payload_bytes(own_redis_server):
    from cascade_redis import RedisStateStore

    with own_redis_server.client() as client:
        client.config_set("maxmemory", "1")  # every write is refused with OOM
        client.config_set("maxmemory-policy", "noeviction")
    store = RedisStateStore.from_uri(own_redis_server.uri)
    try:
        backend = store("run-oom")
        with pytest.raises(cs.BackendError) as error:
            backend.put_results({"node": b"PAYLOAD-BYTES-51ab" + b"\xca\x5c" * 50})
        message = str(error.value)
        assert "maxmemory" in message and "PAYLOAD" not in message and "\\x" not in message and "\n" not in message
    finally:
        store.close()
