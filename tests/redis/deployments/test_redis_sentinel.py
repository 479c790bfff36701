"""cascade-redis behind Sentinel (a master, a replica, one sentinel; one set-up per session, see
conftest.py): the conformance kit, ``cascade backends check``, and ``SENTINEL FAILOVER`` in the middle
of a run, with and without ``min_replicas``."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import cascade_core as cs
from cascade_redis import RedisStateStore
from cascade_redis.layout import run_keys

if TYPE_CHECKING:
    from .conftest import LocalSentinel

pytestmark = pytest.mark.redis

RAN: Counter[int] = Counter()  # executions of `step`, by position in the chain


@pytest.mark.slow
def test_conformance_kit(sentinel_uri: str, redis_sentinel: LocalSentinel, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pytest", "--pyargs", "cascade_core.testing", "--cascade-uri"]
    command += [sentinel_uri + "&prefix=kit&ttl=60", "-q", "-p", "no:cacheprovider", "-rs"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "optional capability" not in done.stdout, done.stdout[-2000:]
    with redis_sentinel.master().client() as client:
        assert client.dbsize() == 0  # the kit cleans up after itself


def check(uri: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cascade_core", "backends", "check", uri]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def passwords(redis_sentinel: LocalSentinel) -> tuple[str, str]:
    """(the data nodes' password, the sentinel's)."""
    data, sentinel = redis_sentinel.data[0].password, redis_sentinel.sentinel.password
    assert data and sentinel
    return data, sentinel


def test_backends_check_reports_the_master(sentinel_uri: str, redis_sentinel: LocalSentinel) -> None:
    DATA_PASSWORD, SENTINEL_PASSWORD = passwords(redis_sentinel)
    done = check(sentinel_uri)
    assert done.returncode == 0, done.stderr
    master = redis_sentinel.master()
    with master.client() as client:
        version = client.info("server")["redis_version"]
    found = f"Sentinel service 'cascade': master {master.address} (redis {version}), 1 live replica, db 0"
    masked = sentinel_uri.replace(DATA_PASSWORD, "***").replace(SENTINEL_PASSWORD, "***")
    lines = done.stdout.strip().splitlines()
    for kind, line in zip(("state", "cache"), lines, strict=True):
        assert line.startswith(f"{masked} {kind}: ok (") and line.endswith(found), line
    assert DATA_PASSWORD not in done.stdout and SENTINEL_PASSWORD not in done.stdout


@pytest.mark.parametrize("wrong", ["sentinel", "data"])
def test_a_wrong_password_fails_the_check_in_one_masked_line(
    sentinel_uri: str, redis_sentinel: LocalSentinel, wrong: str
) -> None:
    DATA_PASSWORD, SENTINEL_PASSWORD = passwords(redis_sentinel)
    bad = "Wr0ng-pa55"
    uri = sentinel_uri.replace(SENTINEL_PASSWORD if wrong == "sentinel" else DATA_PASSWORD, bad)
    done = check(uri)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all(" FAILED: " in line and "redis+sentinel://:***@" in line for line in lines), lines
    advice = "check sentinel_username and sentinel_password" if wrong == "sentinel" else "check the user name and"
    assert all(advice in line for line in lines), lines
    for secret in (bad, DATA_PASSWORD, SENTINEL_PASSWORD):
        assert secret not in done.stdout + done.stderr


class Acknowledged:
    """A state backend that notes every result whose ``put_results`` returned: what the store said it kept."""

    def __init__(self, backend: Any, kept: set[str]) -> None:
        self.backend = backend
        self.kept = kept

    def put_results(self, results: Mapping[str, bytes]) -> None:
        self.backend.put_results(results)
        self.kept.update(results)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


@cs.task
def step(position: int, previous: int) -> int:
    RAN[position] += 1
    time.sleep(0.02)
    return previous + 1


def chain(length: int) -> Any:
    value: Any = 0
    for position in range(length):
        value = step(position, value)
    return value


def run_through_a_failover(redis_sentinel: LocalSentinel, uri: str, kept: set[str], run_id: str) -> list[str]:
    """Run a chain of 120 steps with a SENTINEL FAILOVER after 0.5 s; when the run fails, resume it (after the
    failover) until it completes. Returns the errors met."""
    store = RedisStateStore.from_uri(uri)
    errors: list[str] = []
    failover = threading.Timer(0.5, redis_sentinel.failover)
    failover.start()
    try:
        for _ in range(5):
            try:
                value = cs.run(chain(120), state_backend=lambda rid: Acknowledged(store(rid), kept), run_id=run_id)
                assert value == 120
                return errors
            except cs.BackendUnavailableError as exc:
                errors.append(str(exc))
                failover.join()
        raise AssertionError(f"the run never completed: {errors}")
    finally:
        failover.join()
        store.close()


@pytest.mark.slow
def test_a_failover_in_the_middle_of_a_run(sentinel_uri: str, redis_sentinel: LocalSentinel) -> None:
    """The run follows the new master: it completes, or fails with one line and then resumes."""
    RAN.clear()
    old = redis_sentinel.master()
    errors = run_through_a_failover(redis_sentinel, sentinel_uri, set(), "failover")
    assert redis_sentinel.master() is not old
    for error in errors:
        assert len(error.splitlines()) == 1 and error.startswith(f"redis at {sentinel_uri}"), error
    assert set(RAN) == set(range(120))  # every step ran (some twice: asynchronous replication loses writes)


@pytest.mark.slow
@pytest.mark.parametrize("retries", [10, 3])
def test_with_min_replicas_no_acknowledged_result_is_lost(
    sentinel_uri: str, redis_sentinel: LocalSentinel, retries: int
) -> None:
    """min_replicas=1: a result put_results reported stored survives the failover; with enough retries the
    run rides through the failover, with few it fails with one line and resumes."""
    RAN.clear()
    kept: set[str] = set()
    uri = f"{sentinel_uri}&min_replicas=1&min_replicas_timeout=0.5&retries={retries}"
    errors = run_through_a_failover(redis_sentinel, uri, kept, "acknowledged")
    for error in errors:
        assert len(error.splitlines()) == 1, error
        assert "replicas asked for acknowledged a write" in error or "is unavailable" in error, error
    redis_sentinel.wait_in_sync()
    with redis_sentinel.master().client() as client:
        stored = {field.decode() for field in client.hkeys(run_keys("cascade", "acknowledged")[0])}
    assert len(stored) == 120 and kept, (len(stored), len(kept))
    assert kept <= stored, sorted(kept - stored)[:5]  # every result the store acknowledged survived
    lost_steps = [position for position, count in RAN.items() if count > 1]
    if not errors:
        assert lost_steps == [], RAN  # nothing acknowledged was lost, so nothing ran twice
