"""Named limits on a real redis-server, with real driver processes: concurrency across drivers
and runs, a SIGKILLed holder, a rate across drivers. The tasks log their own start and end times."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cascade_core as cs

pytestmark = [pytest.mark.redis, pytest.mark.slow]

DRIVER = """
import os, sys, time
import cascade_core as cs

LOG = os.environ["LIMIT_LOG"]
SLOW = float(os.environ.get("LIMIT_SLOW", "0.2"))


def note(event, run, i):
    with open(LOG, "a") as log:
        log.write(f"{event} {run} {i} {time.time()} {os.getpid()}\\n")


@cs.task(limits=["api"], name="work")
def work(run, i):
    note("start", run, i)
    time.sleep(SLOW)
    note("end", run, i)
    return i


if __name__ == "__main__":
    state, run_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ttl = float(os.environ.get("LIMIT_TTL", "30"))
    cs.run([work(run_id, i) for i in range(count)], state_backend=state, run_id=run_id, leases=True, lease_ttl=ttl,
           max_workers=8)
"""


def start(tmp_path: Path, uri: str, run_id: str, count: int, **env: str) -> subprocess.Popen[str]:
    script = tmp_path / "driver.py"
    if not script.exists():
        script.write_text(DRIVER)
    return subprocess.Popen(
        [sys.executable, str(script), uri, run_id, str(count)],
        env={**os.environ, "LIMIT_LOG": str(tmp_path / "events.log"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def events(tmp_path: Path) -> list[tuple[str, str, int, float, int]]:
    log = tmp_path / "events.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(e, run, int(i), float(t), int(pid)) for e, run, i, t, pid in (line.split() for line in lines)]


def finish(drivers: list[subprocess.Popen[str]], timeout: float = 90) -> None:
    try:
        for driver in drivers:
            _, err = driver.communicate(timeout=timeout)
            assert driver.returncode == 0, err[-2000:]
    finally:
        for driver in drivers:
            if driver.poll() is None:
                driver.kill()


def peak(log: list[tuple[str, str, int, float, int]]) -> int:
    """The most tasks running at one moment, from their own start and end times."""
    running = top = 0
    for event, *_ in sorted(log, key=lambda e: (e[3], e[0] == "start")):  # an end before a start at a tie
        running += 1 if event == "start" else -1
        top = max(top, running)
    return top


def test_concurrency_holds_across_shared_drivers_and_other_runs(tmp_path, redis_uri):
    cs.set_limit(redis_uri, "api", concurrency=5)
    slow = 0.3
    drivers = [start(tmp_path, redis_uri, "shared", 40, LIMIT_SLOW=str(slow)) for _ in range(3)]
    drivers += [start(tmp_path, redis_uri, f"other{n}", 10, LIMIT_SLOW=str(slow)) for n in range(2)]
    finish(drivers)
    log = events(tmp_path)
    starts = [e for e in log if e[0] == "start"]
    assert len(starts) == 60 and len({(run, i) for _, run, i, _, _ in starts}) == 60  # each task once
    assert peak(log) <= 5
    span = max(e[3] for e in log if e[0] == "end") - min(e[3] for e in starts)
    busy = sum(end[3] - begin[3] for begin, end in zip(sorted(starts), sorted(e for e in log if e[0] == "end")))
    assert 60 * slow / 5 / span >= 0.8, f"{span:.2f} s for 60 tasks of {slow} s under 5 slots (busy {busy:.1f} s)"
    assert len({pid for _, run, _, _, pid in starts if run == "shared"}) >= 2  # the shared run was split


def test_a_sigkilled_holder_frees_its_slots_within_the_lease_ttl(tmp_path, redis_uri):
    cs.set_limit(redis_uri, "api", concurrency=2)
    ttl = 2.0
    holder = start(tmp_path, redis_uri, "holder", 2, LIMIT_SLOW="60", LIMIT_TTL=str(ttl))
    waiter = None
    try:
        deadline = time.monotonic() + 30
        while len([e for e in events(tmp_path) if e[0] == "start"]) < 2:
            assert time.monotonic() < deadline and holder.poll() is None, holder.stderr and holder.stderr.read()
            time.sleep(0.02)
        waiter = start(tmp_path, redis_uri, "waiter", 4, LIMIT_SLOW="0.1", LIMIT_TTL=str(ttl))
        time.sleep(1.0)  # the waiter is up and refused
        holder.send_signal(signal.SIGKILL)
        killed = time.time()
        holder.communicate(timeout=10)  # reaped, its pipes closed
        finish([waiter])
    finally:
        for process in (holder, waiter):
            if process is not None and process.poll() is None:
                process.kill()
    waiter_starts = [e[3] for e in events(tmp_path) if e[0] == "start" and e[1] == "waiter"]
    assert len(waiter_starts) == 4
    first = min(waiter_starts)
    assert killed + ttl / 3 < first <= killed + ttl + 1.5  # held until the dead holder's slots expired


def test_a_rate_holds_across_drivers(tmp_path, redis_uri):
    cs.set_limit(redis_uri, "api", rate="20/s")
    drivers = [start(tmp_path, redis_uri, "rated", 100, LIMIT_SLOW="0") for _ in range(3)]
    finish(drivers)
    starts = sorted(e[3] for e in events(tmp_path) if e[0] == "start")
    assert len(starts) == 100
    assert starts[-1] - starts[0] >= 4.5  # 99 intervals of 1/20 s: 4.95 s
    most = max(sum(1 for t in starts if first <= t < first + 1.0) for first in starts)
    assert most <= 20 + 1, most  # the rate plus the burst (1)


def test_an_acquisition_and_a_release_are_one_round_trip_each(redis_uri, redis_server, monkeypatch):
    from cascade_redis.connection import RedisConnection
    from cascade_redis.state import RedisStateStore

    store = RedisStateStore.from_uri(redis_uri)
    try:
        store.set_limit("api", 2, None, 1.0, 1)
        assert store.acquire_limit("api", "warm-up", 30) == 0.0  # loads the script once
        store.release_limit("api", ["warm-up"])
        calls: list[str] = []
        real = RedisConnection.on
        monkeypatch.setattr(
            RedisConnection, "on", lambda self, key, action: calls.append(key) or real(self, key, action)
        )
        with redis_server.client() as client:
            before = client.info("commandstats")
            assert store.acquire_limit("api", "h", 30) == 0.0
            assert len(calls) == 1
            store.release_limit("api", ["h"])
            assert len(calls) == 2  # one pipeline: ZREM of the slot and of any waiting mark
            after = client.info("commandstats")
        evalsha = after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"]
        assert evalsha == 1 and after.get("cmdstat_script|load") == before.get("cmdstat_script|load")
    finally:
        store.close()
