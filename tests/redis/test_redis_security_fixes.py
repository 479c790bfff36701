"""Issue 11 on a real redis-server: ``?serializer=json`` never unpickles a planted payload, numeric
options are checked when the URI is parsed, and a refused write never quotes payload bytes."""

from __future__ import annotations

import logging
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core._store.codec import Codec, cache_storage_key, state_key
from cascade_redis.cache import RedisCacheBackend
from cascade_redis.options import RedisOptions

pytestmark = pytest.mark.redis


class _Planted:
    """Unpickling this creates ``path``: the proof that a planted pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _planted(storage_key: str, marker: Path) -> bytes:
    """A pickle payload with a valid checksum: what anyone who can write to redis can make."""
    return Codec("pickle").seal(storage_key, b"p", pickle.dumps(_Planted(marker)))


CALLS: list[str] = []


@cs.task(cache=True, name="redsec.square")
def square(n: int) -> int:
    CALLS.append("square")
    return n * n


@cs.task(name="redsec.total")
def total(values: list) -> int:
    CALLS.append("total")
    return sum(values)


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def _json(uri: str) -> str:
    return uri + "?serializer=json"


def test_a_planted_pickle_in_a_json_state_is_refused_on_resume(redis_uri, redis_server, tmp_path):
    marker = tmp_path / "ran"
    state = _json(redis_uri)
    assert cs.run(total([square(2), square(3)]), state_backend=state, run_id="r") == 13
    with redis_server.client() as client:
        ids = [node_id.decode() for node_id in client.hkeys("cascade:run:{r}:results")]
        assert len(ids) == 3
        for node_id in ids:
            client.hset("cascade:run:{r}:results", node_id, _planted(state_key("r", node_id), marker))
    CALLS.clear()
    with pytest.raises(cs.IntegrityError) as error:
        cs.run(total([square(2), square(3)]), state_backend=state, run_id="r")
    assert "was written with pickle, but this backend is set to json and reads only json" in str(error.value)
    assert "\n" not in str(error.value)
    assert not marker.exists() and CALLS == []


def test_a_planted_pickle_in_a_json_cache_is_recomputed_and_overwritten(redis_uri, redis_server, tmp_path, caplog):
    marker = tmp_path / "ran"
    cache = _json(redis_uri)
    assert cs.run([square(2), square(3)], cache_backend=cache) == [4, 9]
    with redis_server.client() as client:
        names = sorted(client.keys("cascade:cache:*"))
        assert len(names) == 2
        for name in names:
            key = name.decode().removeprefix("cascade:cache:")
            client.set(name, _planted(cache_storage_key(key), marker))
    CALLS.clear()
    caplog.set_level(logging.WARNING, logger="cascade")
    assert cs.run([square(2), square(3)], cache_backend=cache) == [4, 9]
    assert CALLS == ["square", "square"] and not marker.exists()
    assert any("was written with pickle" in r.getMessage() for r in caplog.records)
    with redis_server.client() as client:
        assert {client.get(name)[3:4] for name in names} == {b"j"}


def test_a_pickle_store_still_reads_what_a_json_store_wrote(redis_uri):
    assert cs.run([square(4)], cache_backend=_json(redis_uri)) == [16]
    CALLS.clear()
    assert cs.run([square(4)], cache_backend=redis_uri) == [16]
    assert CALLS == []


FLOW = """
import cascade_core as cs


@cs.task
def make() -> list:
    return [1, 2]


@cs.task
def total(values: list) -> int:
    return sum(values)


def pipeline():
    return total(make())
"""


def test_the_cli_refuses_a_planted_pickle_in_one_line(redis_uri, redis_server, tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "flow.py").write_text(FLOW)
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE", "CASCADE_SECRET_KEY")}
    args = [sys.executable, "-m", "cascade_core", "run", "flow.py:pipeline", "--state", _json(redis_uri)]
    args += ["--cache", "memory://", "--run-id", "cli"]
    first = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    with redis_server.client() as client:
        for node_id in client.hkeys("cascade:run:{cli}:results"):
            planted = _planted(state_key("cli", node_id.decode()), marker)
            client.hset("cascade:run:{cli}:results", node_id, planted)
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and not marker.exists()
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith("error: stored value at 'state/cli/")
    assert "was written with pickle, but this backend is set to json" in error_lines[0]
    assert "Traceback" not in done.stderr


# -- numeric options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "raw", "words"),
    [
        ("ttl", "1e300", "at most 315360000 (10 years)"),
        ("ttl", "nan", "at most 315360000 (10 years)"),
        ("ttl", "inf", "at most 315360000 (10 years)"),
        ("state_ttl", "315360001", "expected at most 315360000 seconds (10 years)"),
        ("state_ttl", "9" * 30, "expected a whole number from 0 to"),
        ("socket_timeout", "nan", "at most 86400 (a day)"),
        ("socket_timeout", "1e9", "at most 86400 (a day)"),
        ("socket_connect_timeout", "-inf", "at most 86400 (a day)"),
        ("health_check_interval", "86401", "expected at most 86400 seconds (a day)"),
        ("retries", "101", "expected at most 100"),
        ("db", str(2**31), "expected at most 2147483647"),
        ("max_value_size", "1T", "expected a size"),
        ("max_value_size", "99999999999999999999G", "expected a size"),
    ],
)
def test_out_of_range_options_are_refused_when_the_uri_is_parsed(redis_uri, option, raw, words):
    uri = f"{redis_uri}?{option}={raw}"
    with pytest.raises(cs.InvalidURIError) as error:
        RedisOptions.from_uri(uri)
    assert error.value.key == option and f"for option {option!r}" in str(error.value) and words in str(error.value)
    assert "\n" not in str(error.value)
    for kind in ("cache_backend", "state_backend"):
        with pytest.raises(cs.InvalidURIError):
            cs.run(square(5), **{kind: uri})
    assert CALLS == []


def test_the_largest_ttls_work_on_redis(redis_uri, redis_server):
    cache = RedisCacheBackend.from_uri(f"{redis_uri}?ttl=315360000&state_ttl=315360000")
    try:
        cache.set_many({"k": b"v"})
        assert cache.get_many(["k"]) == {"k": b"v"}
        with redis_server.client() as client:
            assert 315_359_000_000 < client.pttl("cascade:cache:k") <= 315_360_000_000
        for bad in (math.nan, math.inf, 1e300):
            with pytest.raises(cs.DefinitionError, match="a cache TTL must be a number of seconds"):
                cache.set_many({"k2": b"v"}, ttl=bad)
        assert cache.get_many(["k2"]) == {}
    finally:
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
