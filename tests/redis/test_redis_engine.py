"""The engine on redis: redis killed mid-run, then resuming; warm reruns stay O(1); an unreachable
server and an oversize result (a driver killed mid-run: tests/core/test_crash_resume.py).

Executions are counted through a side effect: every task appends a line to a log file.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import cascade_core as cs

if TYPE_CHECKING:
    from redis_servers import RedisServer

pytestmark = pytest.mark.redis

LOG: list[Path] = []  # the current test's execution log (set by the `log` fixture)
KILL: list[Any] = []  # what `finish` calls the first time it runs


@pytest.fixture
def log(tmp_path: Path) -> Any:
    path = tmp_path / "executions.log"
    path.touch()
    LOG[:] = [path]
    KILL.clear()
    yield path
    LOG.clear()
    KILL.clear()


def record(name: str) -> None:
    with LOG[0].open("a") as file:
        file.write(name + "\n")


def executions(path: Path) -> Counter[str]:
    return Counter(path.read_text().split())


@cs.task
def square(i: int) -> int:
    record(f"square-{i}")
    return i * i


@cs.task(cache=True, cache_ttl=600)
def cached_square(i: int) -> int:
    record(f"cached-{i}")
    return i * i


@cs.task
def finish(*values: int) -> int:
    record("finish")
    if KILL:
        KILL.pop()()
    return sum(values)


def test_redis_killed_mid_run_then_restarted_resumes(own_redis_server: RedisServer, log: Path) -> None:
    own_redis_server.restart(appendonly=True)  # every write fsynced: a kill loses nothing acknowledged
    uri = own_redis_server.uri
    KILL.append(own_redis_server.kill)
    started = time.monotonic()
    with pytest.raises(cs.BackendUnavailableError, match="is redis-server running"):
        cs.run(finish(*[square(i) for i in range(5)]), state_backend=uri, cache_backend=uri, run_id="crash-1")
    assert time.monotonic() - started < 10
    assert executions(log) == Counter({**{f"square-{i}": 1 for i in range(5)}, "finish": 1})

    own_redis_server.start(appendonly=True)
    assert cs.run(finish(*[square(i) for i in range(5)]), state_backend=uri, cache_backend=uri, run_id="crash-1") == 30
    # The squares were stored before `finish` started, so only `finish` ran again.
    assert executions(log) == Counter({**{f"square-{i}": 1 for i in range(5)}, "finish": 2})


def test_warm_reruns_cost_the_same_whatever_the_size(redis_uri: str, redis_server: RedisServer, log: Path) -> None:
    resumed: dict[int, dict[str, int]] = {}
    cached: dict[int, dict[str, int]] = {}
    for n in (5, 300):
        assert cs.run(
            finish(*[cached_square(i) for i in range(n)]),
            state_backend=redis_uri,
            cache_backend=redis_uri,
            run_id=f"cold-{n}",
        ) == sum(i * i for i in range(n))
        before = redis_server.command_calls()
        cs.run(
            finish(*[cached_square(i) for i in range(n)]),
            state_backend=redis_uri,
            cache_backend=redis_uri,
            run_id=f"cold-{n}",
        )
        resumed[n] = redis_server.calls_since(before)
        before = redis_server.command_calls()
        cs.run(
            finish(*[cached_square(i) for i in range(n)]),
            state_backend=redis_uri,
            cache_backend=redis_uri,
            run_id=f"warm-{n}",
        )
        cached[n] = redis_server.calls_since(before)
    # Resumed: nothing ran again; from the cache: only `finish` (not cacheable) ran again.
    assert executions(log) == Counter({**{f"cached-{i}": 1 for i in range(300)}, "finish": 4})
    assert resumed[5] == resumed[300], resumed
    assert cached[5] == cached[300], cached
    # A handful of pipelines (run info at start and end, results, task records), whatever N is, and the
    # run lease: 8 commands (two EVALSHA with their SCRIPT EXISTS, and the GET/SET/DEL inside them).
    assert sum(resumed[300].values()) <= 28 and sum(cached[300].values()) <= 48
    # One MGET for the cache; the only GETs are the run lease scripts' (acquire and release read the owner).
    assert cached[300].get("mget") == 1 and cached[300].get("get", 0) == 2


def test_unreachable_redis_fails_the_run_fast_with_a_masked_uri(closed_port: int, log: Path) -> None:
    uri = f"redis://:hunter2@127.0.0.1:{closed_port}/0"
    started = time.monotonic()
    with pytest.raises(cs.BackendUnavailableError) as info:
        cs.run(finish(square(1)), state_backend=uri, cache_backend=uri, run_id="nowhere")
    assert time.monotonic() - started < 5
    assert "hunter2" not in str(info.value) and ":***@" in str(info.value)
    assert executions(log) == Counter()


def test_oversize_result_fails_the_task_and_stores_nothing(
    redis_uri: str, redis_server: RedisServer, log: Path
) -> None:
    @cs.task
    def big() -> bytes:
        return b"x" * 4096

    report = cs.Engine(redis_uri + "?max_value_size=1K", redis_uri).execute(big(), run_id="big")
    assert report.status == "failed"
    assert report.error is not None and isinstance(report.error.__cause__, cs.SerializationError)
    client = redis_server.client()
    try:
        assert client.hlen("cascade:run:{big}:results") == 0
    finally:
        client.close()
