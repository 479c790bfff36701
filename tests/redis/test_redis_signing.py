"""Signed payloads end to end on a real redis-server: tampered, swapped and unsigned entries are
refused before anything is unpickled; without a key, a one-time warning explains signing."""

from __future__ import annotations

import logging
import pickle

import pytest

import cascade_core as cs
from cascade_core._store import codec

pytestmark = pytest.mark.redis

EXPLODED: list[str] = []


def _explode():
    EXPLODED.append("unpickled")
    return "evil"


class Evil:
    def __reduce__(self):
        return (_explode, ())


@cs.task(cache=True, name="signing.value")
def value(x):
    return x * 2


@cs.task(name="signing.plus")
def plus(x):
    return x + 1


def _cache_keys(client) -> list[bytes]:
    return sorted(client.keys("cascade:cache:*"))


def test_tampered_cache_entry_is_never_unpickled_and_is_recomputed(redis_uri, redis_server, caplog):
    engine = cs.Engine(redis_uri, redis_uri, secret_keys=[b"key-one"])
    assert engine.run(value(21)) == 42
    with redis_server.client() as client:
        (key,) = _cache_keys(client)
        payload = client.get(key)
        body_start = len(payload) - len(pickle.dumps(42, protocol=pickle.HIGHEST_PROTOCOL))
        client.set(key, payload[:body_start] + pickle.dumps(Evil()))  # the signature no longer matches
    caplog.set_level(logging.WARNING, logger="cascade")
    assert engine.run(value(21)) == 42
    assert EXPLODED == []
    assert any("fails its signature" in record.getMessage() for record in caplog.records)
    with redis_server.client() as client:
        assert client.get(key) == payload  # recomputed and overwritten with a valid entry


def test_swapped_and_unsigned_state_rows_are_refused(redis_uri, redis_server):
    signed = cs.Engine(redis_uri, secret_keys=[b"key-one"])
    first, second = value(1), value(2)
    report = signed.execute(plus(first), run_id="swap")
    assert report.status == "succeeded"
    with redis_server.client() as client:
        results = client.hgetall("cascade:run:{swap}:results")
        ids = sorted(results)
        # Valid payloads under each other's keys (both ways: the rerun reads only its target's).
        client.hset("cascade:run:{swap}:results", mapping={ids[0]: results[ids[1]], ids[1]: results[ids[0]]})
    with pytest.raises(cs.IntegrityError) as error:
        signed.run(plus(first), run_id="swap")
    assert "swap" in error.value.key and "\n" not in str(error.value)

    cs.Engine(redis_uri, secret_keys=[]).run(second, run_id="unsigned")
    with pytest.raises(cs.IntegrityError, match="unsigned"):
        signed.run(plus(second), run_id="unsigned")


def test_rotation_reads_old_payloads(redis_uri):
    old = cs.Engine(redis_uri, secret_keys=[b"old"])
    old.run(value(5), run_id="rotate")
    rotated = cs.Engine(redis_uri, secret_keys=[b"new", b"old"])
    assert rotated.run(plus(value(5)), run_id="rotate") == 11


def test_unsigned_pickles_from_redis_warn_once(redis_uri, caplog, monkeypatch):
    monkeypatch.setattr(codec, "_warned_unsigned", False)
    caplog.set_level(logging.WARNING, logger="cascade.security")
    engine = cs.Engine(redis_uri, redis_uri, secret_keys=[])
    engine.run(value(3))
    engine.run(value(3))  # a cache hit: reads a pickle from redis
    engine.run(value(3))
    warnings = [r.getMessage() for r in caplog.records if r.name == "cascade.security"]
    assert len(warnings) == 1 and "CASCADE_SECRET_KEY" in warnings[0]
