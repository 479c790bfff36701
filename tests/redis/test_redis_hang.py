"""A redis-server that stops answering (SIGSTOP) fails a run within the documented
``(retries + 1) × socket_timeout``, and the run resumes once it answers again; the size
limit names redis's own option."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import cascade_core as cs

PASSWORD = "hang/s3cr#t?pw"


@pytest.mark.slow
@pytest.mark.parametrize("leases", [False, True])
def test_a_server_that_stops_answering_fails_the_run_in_bound_and_the_run_resumes(
    own_redis_server, leases: bool, store_at, wait_until
):
    server = own_redis_server
    admin = server.client()
    admin.config_set("requirepass", PASSWORD)
    admin.close()
    socket_timeout, retries = 1.0, 1
    bound = (retries + 1) * socket_timeout  # docs/redis.md, "Limits and failures"
    uri = f"redis://:{PASSWORD.replace('/', '%2F').replace('#', '%23').replace('?', '%3F')}@127.0.0.1:{server.port}/0"
    uri += f"?socket_timeout={socket_timeout:g}&retries={retries}"
    pid = server.process.pid
    calls: Counter[str] = Counter()
    stopped: list[float] = []

    @cs.task(cache=True)
    def load(i: int) -> int:
        calls["load"] += 1
        return i

    @cs.task(cache=True)  # holds its cache lock while redis stops
    def freeze(values: list) -> int:
        calls["freeze"] += 1
        if not stopped:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(time.monotonic())
        return sum(values)

    @cs.task
    def publish(total: int) -> int:
        calls["publish"] += 1
        return total

    # A short lease_ttl: the leases this driver cannot release expire before the resume.
    engine = cs.Engine(uri, uri, leases=leases, lease_ttl=1.0)
    try:
        with pytest.raises(cs.BackendUnavailableError) as info:
            engine.run(publish(freeze([load(i) for i in range(3)])), run_id="hung")
        elapsed = time.monotonic() - stopped[0]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert elapsed <= 1.5 * bound, f"failed after {elapsed:.2f}s, documented bound {bound:.2f}s"
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"redis at {cs.BackendURI.parse(uri)} is unavailable after {retries} retries")
    assert ":***@" in message and "s3cr" not in message
    assert calls == {"load": 3, "freeze": 1}

    # The run lease this driver could not release expires (the cache locks it held are waited on).
    wait_until(lambda: store_at(uri).run_lease_free("hung"), 10, "the run lease to expire")
    assert engine.run(publish(freeze([load(i) for i in range(3)])), run_id="hung") == 3
    assert calls["load"] == 3  # stored (or cached) before redis stopped
    assert calls["freeze"] <= 2 and calls["publish"] == 1


@pytest.mark.slow
def test_a_cache_that_stops_answering_fails_the_run_in_bound_and_the_state_records_it(own_redis_server, tmp_path: Path):
    """Only the store that stopped is given up: the run, on a sqlite state, records the crash."""
    server = own_redis_server
    cache_uri = f"{server.uri}?socket_timeout=1&retries=1"
    state_uri = f"sqlite:///{tmp_path / 'state.db'}"
    pid = server.process.pid
    stopped: list[float] = []

    @cs.task(cache=True)
    def freeze() -> int:
        if not stopped:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(time.monotonic())
        return 1

    engine = cs.Engine(state_uri, cache_uri, lease_ttl=1.0)
    try:
        with pytest.raises(cs.BackendUnavailableError):
            engine.run(freeze(), run_id="cache-hung")
        elapsed = time.monotonic() - stopped[0]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert elapsed <= 1.5 * 2 * 1.0, f"failed after {elapsed:.2f}s"
    shown = subprocess.run(
        [sys.executable, "-m", "cascade_core", "runs", "show", "cache-hung", "--state", state_uri, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    info = json.loads(shown.stdout)["info"]
    assert info["status"] == "crashed"
    expected = f"BackendUnavailableError: redis at {cs.BackendURI.parse(cache_uri)} is unavailable"
    assert info["error"].startswith(expected)


@pytest.mark.slow
def test_a_call_that_gives_up_cuts_short_the_calls_waiting_on_the_same_server(own_redis_server):
    """A lease renewal in another thread, on another pool of the same URI, fails with the call
    that gave up instead of after its own retry budget."""
    from cascade_redis import RedisCacheBackend, RedisStateStore

    server = own_redis_server
    uri = f"{server.uri}?socket_timeout=1&retries=2"
    store, cache = RedisStateStore.from_uri(uri), RedisCacheBackend.from_uri(uri)
    state = store("cut-short")
    state.set_run_info({"status": "running"})
    cache.set_many({"k": b"v"})  # both pools are connected
    outcome: dict[str, object] = {}

    def waiting_call() -> None:
        try:
            cache.get_many(["k"])
        except cs.BackendUnavailableError as exc:
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    other = threading.Thread(target=waiting_call)
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        timer = threading.Timer(1.5, other.start)  # starts halfway through the first call's budget
        timer.start()
        with pytest.raises(cs.BackendUnavailableError):
            state.get_run_info()
        gave_up = time.monotonic()
        timer.join()
        other.join(timeout=10)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert 2.5 < gave_up - started < 4.5  # (retries + 1) x socket_timeout, plus the backoff
    assert isinstance(outcome.get("error"), cs.BackendUnavailableError)
    assert outcome["ended"] - gave_up < 0.5  # not 1.5 s later, at the end of its own budget
    assert "\n" not in str(outcome["error"]) and str(cs.BackendURI.parse(uri)) in str(outcome["error"])
    # A call made afterwards tries again: the server answers.
    assert state.get_run_info()["status"] == "running" and cache.get_many(["k"]) == {"k": b"v"}
    store.close()
    cache.close()


@cs.task
def _big() -> bytes:
    return b"x" * 4096


@cs.task(cache=True)
def _big_cached() -> bytes:
    return b"y" * 4096


def test_the_size_limit_names_max_value_size(redis_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    small = redis_uri + "?max_value_size=1K"
    with pytest.raises(cs.TaskFailed) as info:
        cs.run(_big(), state_backend=small)
    assert str(info.value.cause).endswith(
        "bytes, over the state backend's limit of 1024 bytes: return a smaller value or raise the backend's "
        "max_value_size"
    )

    caplog.set_level(logging.WARNING, logger="cascade")
    sqlite = f"sqlite:///{tmp_path / 'state.db'}"
    assert cs.run(_big_cached(), state_backend=sqlite, cache_backend=small) == b"y" * 4096
    warnings = [r.getMessage() for r in caplog.records if "not cached" in r.getMessage()]
    assert len(warnings) == 1
    assert "over the cache's limit of 1024 bytes (raise the backend's max_value_size to cache it)" in warnings[0]
