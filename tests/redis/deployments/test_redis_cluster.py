"""cascade-redis on a real 3-master Redis Cluster (one per session, see conftest.py): the conformance
kit, one slot per run, cache batches costing one round trip per master, drivers sharing a run,
resuming after a SIGKILLed driver, redirections after a slot moved, and ``cascade backends check``."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import cascade_core as cs
from cascade_redis import RedisCacheBackend, RedisStateStore
from cascade_redis.layout import lease_key, run_keys

if TYPE_CHECKING:
    from .conftest import LocalCluster

pytestmark = pytest.mark.redis

SEEN: dict[str, list[bytes]] = {}  # keys of the run found by `look` while it ran
CLUSTER: list[Any] = []  # the session's LocalCluster, for `look`


@pytest.mark.slow
@pytest.mark.parametrize("options", ["", "?prefix=kit&ttl=60&state_ttl=600"])
def test_conformance_kit(cluster_uri: str, redis_cluster: LocalCluster, tmp_path: Path, options: str) -> None:
    command = [sys.executable, "-m", "pytest", "--pyargs", "cascade_core.testing", "--cascade-uri"]
    command += [cluster_uri + options, "-q", "-p", "no:cacheprovider", "-rs"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "optional capability" not in done.stdout, done.stdout[-2000:]
    assert redis_cluster.all_keys() == []  # the kit cleans up after itself, on every master


@cs.task
def look(run_id: str) -> int:
    """Runs while the run holds its leases: note every key of the run then present on any master."""
    SEEN[run_id] = [key for key in CLUSTER[0].all_keys() if b"{" + run_id.encode() + b"}" in key]
    return 1


@cs.task(cache=True)
def plus(x: int) -> int:
    return x + 1


@cs.task
def boom() -> int:
    raise RuntimeError("planned")


def keyslots(cluster: LocalCluster, keys: list[bytes]) -> set[int]:
    client = cluster.nodes[0].client()
    try:
        return {int(client.execute_command("CLUSTER KEYSLOT", key)) for key in keys}
    finally:
        client.close()


def test_every_key_of_a_run_is_in_one_slot(cluster_uri: str, redis_cluster: LocalCluster) -> None:
    CLUSTER[:] = [redis_cluster]
    run_id = "nightly/2026-11-30"
    target = look(run_id).after(plus(plus(1)))
    assert cs.run(target, state_backend=cluster_uri, cache_backend=cluster_uri, run_id=run_id, leases=True) == 1
    with pytest.raises(cs.TaskFailed):  # and a failure, so that a node is recorded as skipped
        cs.run(plus(boom()), state_backend=cluster_uri, cache_backend=cluster_uri, run_id=run_id)
    during = SEEN.pop(run_id)
    after = [key for key in redis_cluster.all_keys() if b"{" + run_id.encode() + b"}" in key]
    kinds = {key.decode().split("}:", 1)[1].split("/")[0] for key in during + after}
    names = {key.decode().rsplit(":", 1)[1] for key in after}
    assert {"results", "meta", "tasks", "skipped"} <= names, after
    # The run lease, the driver's slot and the lease on `look` itself were held while it ran.
    assert {"~run", "~driver"} <= kinds and any(len(kind) == 32 for kind in kinds), during
    slot = keyslots(redis_cluster, [b"{" + run_id.encode() + b"}"])
    assert keyslots(redis_cluster, during + after) == slot
    # The layout functions agree with what the server says, for the lease names the engine uses.
    layout = [*run_keys("cascade", run_id), *(lease_key("cascade", run_id, n) for n in ("~run", "~driver/63", "ab12"))]
    assert keyslots(redis_cluster, [key.encode() for key in layout]) == slot


def test_a_run_id_that_would_split_its_keys_over_slots_is_refused(cluster_uri: str) -> None:
    @cs.task
    def one() -> int:
        return 1

    for run_id in ("}x", "}"):
        with pytest.raises(cs.CascadeError) as info:
            cs.run(one(), state_backend=cluster_uri, run_id=run_id)
        message = str(info.value)
        assert "would spread its keys over several cluster slots" in message and len(message.splitlines()) == 1


@contextlib.contextmanager
def count_sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[int]]:
    """Count what the client sends, by server port: a pipeline is one send, whatever its length."""
    import redis.connection

    sends: Counter[int] = Counter()
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):  # type: ignore[no-untyped-def]
        sends[self.port] += 1
        return original(self, command, check_health)

    with monkeypatch.context() as patch:
        patch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
        yield sends


@cs.task(cache=True)
def cached_square(i: int) -> int:
    return i * i


@cs.task(cache=True)
def add_up(*values: int) -> int:
    return sum(values)


def test_warm_rerun_round_trips_do_not_grow_with_the_size(
    cluster_uri: str, redis_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = RedisCacheBackend.from_uri(cluster_uri)  # one cache for every run: its pools stay connected
    masters = {node.port for node in redis_cluster.nodes}
    sends: dict[int, Counter[int]] = {}
    mgets: dict[int, int] = {}
    exists: dict[int, int] = {}
    try:
        for n in (30, 3000):
            target = add_up(*[cached_square(i) for i in range(n)])
            assert cs.run(target, state_backend="memory://", cache_backend=cache) == sum(i * i for i in range(n))
            before = redis_cluster.command_calls()
            with count_sends(monkeypatch) as counted:
                assert cs.run(target, state_backend="memory://", cache_backend=cache) == sum(i * i for i in range(n))
            sends[n] = counted
            after = redis_cluster.command_calls()
            mgets[n] = sum(a.get("mget", 0) - b.get("mget", 0) for a, b in zip(after, before, strict=True))
            exists[n] = sum(a.get("exists", 0) - b.get("exists", 0) for a, b in zip(after, before, strict=True))
    finally:
        cache.close()
    # The target's entry is read (one MGET, on its master); the N it does not use are counted
    # (one pipeline per master). The round trips grow with the masters, not the tasks.
    assert sorted(sends[30].values()) == sorted(sends[3000].values()), sends  # (the target's master varies)
    assert set(sends[30]) == masters and sum(sends[30].values()) == len(masters) + 1, sends
    # Inside those pipelines, one EXISTS per slot holding some of the N entries (a slot takes one).
    assert mgets[30] == mgets[3000] == 1, mgets
    assert exists[30] == 30 and 3000 * 0.8 < exists[3000] <= 3000, exists


def test_cache_locks_over_many_slots(cluster_uri: str) -> None:
    cache = RedisCacheBackend.from_uri(cluster_uri)
    names = [f"task:{i:032x}" for i in range(200)]  # in about 200 slots on all three masters
    try:
        assert cache.acquire_leases(names, "me", 30) == set(names)
        assert cache.acquire_leases([*names[:5], "free"], "you", 30) == {"free"}
        assert cache.renew_leases(names, "me", 30) == set(names)
        cache.release_leases(names[:100], "me")
        assert cache.acquire_leases(names, "you", 30) == set(names[:100])
        cache.release_leases(names, "you")
        cache.release_leases(names, "me")
        assert cache.acquire_leases(names, "third", 30) == set(names)
    finally:
        cache.close()


@pytest.mark.slow
def test_drivers_sharing_a_run_split_the_work(tmp_path: Path, cluster_uri: str, drivers: Any) -> None:
    drivers.sharing_drivers_split_the_work(tmp_path, cluster_uri)


@pytest.mark.slow
def test_concurrent_runs_compute_a_shared_cache_entry_once(tmp_path: Path, cluster_uri: str, drivers: Any) -> None:
    script, log = drivers.write_workflow(tmp_path), tmp_path / "events.log"
    procs = [drivers.start_driver(script, log, cluster_uri, cluster_uri, f"run-{n}", 1) for n in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "700"
    counts = drivers.events(log)
    assert counts["start shared"] == 1 and counts["start leaf-0"] == 3, counts


@pytest.mark.slow
def test_a_sigkilled_driver_is_resumed_without_redoing_stored_work(
    tmp_path: Path, cluster_uri: str, drivers: Any
) -> None:
    script, log = drivers.write_workflow(tmp_path), tmp_path / "events.log"
    env = {"CASCADE_TEST_WORKERS": "1", "CASCADE_TEST_SLOW": "0.3", "CASCADE_TEST_LEASE_TTL": "1"}
    first = drivers.start_driver(script, log, cluster_uri, cluster_uri, "killed", 6, **env)
    store = RedisStateStore.from_uri(cluster_uri)
    try:
        deadline = time.monotonic() + 60
        while len(store("killed").result_ids()) < 3:
            assert time.monotonic() < deadline and first.poll() is None, first.communicate()
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        stored = len(store("killed").result_ids())
    finally:
        store.close()
    second = drivers.start_driver(script, log, cluster_uri, cluster_uri, "killed", 6, **env)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert out.strip() == str(sum(range(6)) + 700)
    by_driver = drivers.starts_by_driver(log)
    assert by_driver[str(second.pid)] == 8 - stored, (by_driver, stored)  # 6 leaves, shared, total


def _node_id(client: Any) -> str:
    return client.execute_command("CLUSTER MYID").decode()


def _move_slot(cluster: LocalCluster, slot: int, to: Any) -> None:
    """Give an empty ``slot`` to the node ``to`` (CLUSTER SETSLOT ... NODE on every node), and wait
    until every node agrees."""
    clients = [node.client() for node in cluster.nodes]
    try:
        target = _node_id(to.client())
        for client in sorted(clients, key=lambda c: c.connection_pool.connection_kwargs["port"] != to.port):
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target)
        deadline = time.monotonic() + 20
        for client in clients:
            while True:
                owner = next(r for r in client.cluster("SLOTS") if r[0] <= slot <= r[1])[2][1]
                if int(owner) == to.port:
                    break
                assert time.monotonic() < deadline, f"slot {slot} never moved"
                time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


def test_a_moved_slot_is_followed(cluster_uri: str, redis_cluster: LocalCluster) -> None:
    """A state store whose map says the run's slot is on one master keeps working once the slot moved."""
    from cascade_redis.cluster import key_slot

    run_id = "moving"
    slot = key_slot(run_keys("cascade", run_id)[0])
    with redis_cluster.nodes[0].client() as client:
        port = next(r for r in client.cluster("SLOTS") if r[0] <= slot <= r[1])[2][1]
    owner = next(node for node in redis_cluster.nodes if node.port == port)
    other = next(node for node in redis_cluster.nodes if node is not owner)
    store = RedisStateStore.from_uri(cluster_uri)
    try:
        assert store(run_id).get_results(["a"]) == {}  # the store has read the map: the slot is on `owner`
        _move_slot(redis_cluster, slot, other)
        store(run_id).put_results({"a": b"1"})  # sent to the old owner first: MOVED, map read again, sent again
        assert store(run_id).get_results(["a"]) == {"a": b"1"}
        with other.client() as client:
            assert client.hget(run_keys("cascade", run_id)[0], "a") == b"1"
        store.delete_run(run_id)
    finally:
        store.close()
        _move_slot(redis_cluster, slot, owner)


def test_backends_check_reports_the_masters_and_slots(cluster_uri: str, redis_cluster: LocalCluster) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cascade_core", "backends", "check", cluster_uri],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    for kind, line in zip(("state", "cache"), lines, strict=True):
        assert line.startswith(f"{cluster_uri} {kind}: ok ("), line
        assert line.endswith("16384 of 16384 slots covered") and "Redis Cluster: 3 masters (" in line, line
        listed = line.split("masters (")[1].split(")")[0].split(", ")
        assert sorted(listed) == sorted(node.address for node in redis_cluster.nodes), line
    assert redis_cluster.all_keys() == []  # the check cleaned up


def test_min_replicas_without_replicas_fails_the_write_with_one_line(cluster_uri: str) -> None:
    store = RedisStateStore.from_uri(cluster_uri + "?min_replicas=1&min_replicas_timeout=0.1&retries=1")
    try:
        with pytest.raises(cs.BackendUnavailableError) as info:
            store("r").put_results({"a": b"1"})
    finally:
        store.close()
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "0 of the 1 replicas asked for acknowledged a write within 0.1 s, after 1 retries" in message
    assert "(min_replicas=1); the write may be lost in a failover" in message
