"""Scenario 9: Cascade on a local 3-master Redis Cluster (``redis+cluster://``), started and stopped here.

A chain with its state on the cluster against a raw redis-py ``RedisCluster`` HSET loop to one slot,
and a warm rerun of 10,000 cached tasks against a raw per-master pipelined MGET of the same keys
(grouped by slot, as a cluster requires) plus unpickling.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from typing import Any

import cascade_core as cs

from . import workloads as w
from .common import Result, Row, Seconds, Target, commandstats, delta, free_port, interleave, median

MASTERS = 3
HEADER = 13  # a sealed payload: 5-byte header, 8-byte checksum, then the pickle


class LocalCluster:
    """Three ``redis-server --cluster-enabled yes`` on free ports, joined by ``redis-cli --cluster create``."""

    def __init__(self) -> None:
        self.server = shutil.which("redis-server")
        self.cli = shutil.which("redis-cli")
        self.dir = tempfile.mkdtemp(prefix="cascade-bench-cluster-")
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def available(self) -> bool:
        return self.server is not None and self.cli is not None

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def __enter__(self) -> LocalCluster:
        import redis

        assert self.server and self.cli
        for i in range(MASTERS):
            port, bus = free_port(), free_port()  # name the bus port: port + 10000 may not exist
            directory = os.path.join(self.dir, str(i))
            os.makedirs(directory)
            args = [self.server, "--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1"]
            args += ["--cluster-enabled", "yes", "--save", "", "--appendonly", "no", "--dir", directory]
            args += ["--loglevel", "warning", "--daemonize", "no"]
            self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.ports.append(port)
        try:
            self._wait(lambda client: client.ping())
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            subprocess.run([self.cli, "--cluster", "create", *nodes, "--cluster-yes"], check=True, capture_output=True)
            self._wait(lambda client: client.cluster("INFO")["cluster_state"] == "ok")
            self._wait(lambda client: len(client.cluster("SLOTS")) == MASTERS)
        except (subprocess.CalledProcessError, redis.RedisError, RuntimeError):
            self.__exit__()
            raise
        return self

    def _wait(self, check: Any, timeout: float = 20) -> None:
        import redis

        deadline = time.monotonic() + timeout
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                while True:
                    try:
                        if check(client):
                            break
                    except redis.RedisError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cluster node {port} not ready")
                    time.sleep(0.05)
            finally:
                client.close()

    def clients(self) -> list[Any]:
        import redis

        return [redis.Redis(port=port) for port in self.ports]

    def client(self) -> Any:
        from redis.cluster import ClusterNode, RedisCluster

        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in self.ports])

    def flushall(self) -> None:
        for client in self.clients():
            client.flushall()
            client.close()

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run(quick: bool) -> Result:
    result = Result("redis-cluster", f"9. Redis Cluster ({MASTERS} local masters, redis+cluster://)")
    with LocalCluster() as cluster:
        _chain(cluster, result, quick)
        _warm(cluster, result, quick)
    return result


def _chain(cluster: LocalCluster, result: Result, quick: bool) -> None:
    from .redis_scenarios import _payload_shape

    n = 2000
    repeats = 3 if quick else 9
    id_len, payload_len = _payload_shape()
    fields = [f"{i:0{id_len}x}"[-id_len:] for i in range(n)]
    value = os.urandom(payload_len)
    rc = cluster.client()

    def raw_loop(direct: bool):
        def case() -> Seconds:
            key = f"bench:raw:{{{uuid.uuid4().hex}}}:results"  # a hash tag, as Cascade's run keys have
            client = rc.get_redis_connection(rc.get_node_from_key(key)) if direct else rc
            started = time.perf_counter()
            for name in fields:
                client.hset(key, name, value)
            elapsed = time.perf_counter() - started
            rc.delete(key)
            return Seconds(elapsed)

        return case

    def cascade_chain() -> Seconds:
        started = time.perf_counter()
        cs.run(w.chain(n), state_backend=cluster.url, cache_backend=cs.MemoryCacheBackend(), max_workers=1)
        return Seconds(time.perf_counter() - started)

    times = interleave(
        {
            "raw RedisCluster HSET loop, one slot": raw_loop(False),
            "raw Redis HSET loop on that slot's master": raw_loop(True),
            "Cascade chain, redis+cluster state": cascade_chain,
        },
        repeats,
    )
    rc.close()
    cluster.flushall()
    per = {name: median(runs) / n * 1e6 for name, runs in times.items()}
    for name, runs in times.items():
        result.rows.append(Row(f"chain of {n:,}: {name}", per[name], "µs/task", "", len(runs)))
    ratio = per["Cascade chain, redis+cluster state"] / per["raw RedisCluster HSET loop, one slot"]
    result.targets.append(
        Target(
            f"chain of {n:,} on redis+cluster state vs raw RedisCluster HSET loop to one slot",
            f"{per['Cascade chain, redis+cluster state']:.1f} vs {per['raw RedisCluster HSET loop, one slot']:.1f} "
            f"µs per item = {ratio:.2f}x",
            "<= 1.3x",
            ratio <= 1.3,
            ratio,
            1.3,
        )
    )


def _warm(cluster: LocalCluster, result: Result, quick: bool) -> None:
    from redis.crc import key_slot

    repeats = 3 if quick else 7
    rc = cluster.client()
    masters = cluster.clients()
    by_port = {client.connection_pool.connection_kwargs["port"]: client for client in masters}
    # What a warm raw client knows already: which master serves each slot.
    owner = [by_port[rc.nodes_manager.get_node_from_slot(slot).port] for slot in range(16384)]

    def fill(n: int) -> list[bytes]:
        cluster.flushall()
        cs.run(w.fan(n, w.cached_inc, w.cached_total), state_backend=cs.MemoryStateStore(), cache_backend=cluster.url)
        keys = [key for client in masters for key in client.scan_iter(match="cascade:cache:*", count=1000)]
        assert len(keys) == n + 1, len(keys)
        return keys

    def raw(keys: list[bytes]):
        def case() -> list[Any]:
            groups: dict[int, tuple[Any, dict[int, list[bytes]]]] = {}
            for key in keys:
                slot = key_slot(key)
                client = owner[slot]
                groups.setdefault(id(client), (client, {}))[1].setdefault(slot, []).append(key)
            values = []
            for client, slots in groups.values():
                pipe = client.pipeline(transaction=False)
                for names in slots.values():
                    pipe.mget(names)
                for reply in pipe.execute():
                    values += [pickle.loads(body[HEADER:]) for body in reply]
            return values

        return case

    def warm(n: int, state: Any):
        def case() -> Seconds:
            started = time.perf_counter()
            cs.run(w.fan(n, w.cached_inc, w.cached_total), state_backend=state(), cache_backend=cluster.url)
            return Seconds(time.perf_counter() - started)

        return case

    n = 10_000
    keys = fill(n)
    times = interleave(
        {
            "raw per-master pipelined MGET (one per slot) + pickle.loads": raw(keys),
            "Cascade warm run, memory state": warm(n, cs.MemoryStateStore),
            "Cascade warm run, redis+cluster state": warm(n, lambda: cluster.url),
        },
        repeats,
    )
    for name, runs in times.items():
        result.rows.append(Row(f"warm rerun of {n:,} cached tasks: {name}", median(runs) * 1e3, "ms", "", len(runs)))
    raw_ms = median(times["raw per-master pipelined MGET (one per slot) + pickle.loads"]) * 1e3
    cascade_ms = median(times["Cascade warm run, memory state"]) * 1e3
    state_ms = median(times["Cascade warm run, redis+cluster state"]) * 1e3
    ratio = cascade_ms / raw_ms
    result.targets.append(
        Target(
            f"warm run of {n:,} cached tasks on the cluster vs raw per-master pipelined MGET + pickle.loads",
            f"{cascade_ms:.1f} vs {raw_ms:.1f} ms = {ratio:.2f}x (with redis+cluster state {state_ms / raw_ms:.2f}x)",
            "<= 3x",
            ratio <= 3,
            ratio,
            3.0,
        )
    )
    # Round trips and commands of one warm run, at two sizes: the round trips stay one per master.
    rows, trips_by_n = [], {}
    for size in (n, 1000):  # the cache holds the N entries now; then refilled with 1,000
        if size != n:
            fill(size)
        before = [commandstats(client) for client in masters]
        with _count_sends() as sends:
            cs.run(
                w.fan(size, w.cached_inc, w.cached_total),
                state_backend=cs.MemoryStateStore(),
                cache_backend=cluster.url,
            )
        counts = [delta(b, commandstats(client)) for b, client in zip(before, masters)]
        trips_by_n[size] = sum(sends.values())
        rows.append(
            [
                f"{size:,}",
                str(trips_by_n[size]),
                ", ".join(f"{sends[port]}" for port in cluster.ports),
                ", ".join(f"{count.get('mget', 0)} / {count.get('exists', 0)}" for count in counts),
                ", ".join(str(sum(count.values())) for count in counts),
            ]
        )
    rc.close()
    for client in masters:
        client.close()
    cluster.flushall()
    result.extra_tables.append(
        (
            "What one warm run sends (memory state; sends counted at the client, commands by INFO commandstats)",
            ["N", "sends (round trips)", "sends per master", "MGETs / EXISTS per master", "commands per master"],
            rows,
        )
    )
    result.targets.append(
        Target(
            "warm-run round trips on the cluster do not grow with N",
            ", ".join(f"N={size:,}: {trips}" for size, trips in trips_by_n.items()),
            "constant",
            len(set(trips_by_n.values())) == 1,
        )
    )
    result.notes.append(
        "Every sealed cache entry is one key; a cluster spreads them over its 16,384 slots, and an MGET takes "
        "the keys of one slot only, so a batch of N entries is about N MGETs (a warm run reads only the entries it "
        "uses and counts the others: EXISTS, also one per slot). Cascade sends them as one pipeline "
        "per master: the round trips of a warm run grow with the number of masters, the commands inside them "
        "with N. Each Cascade run opens its own connections and reads the slot map (CLUSTER SLOTS) once; the raw "
        "baseline starts connected and knowing the map, and groups the keys by slot inside its timing."
    )


class _count_sends:
    """Count client sends per server port while inside (a pipeline is one send)."""

    def __enter__(self) -> Counter[int]:
        import redis.connection

        self.sends: Counter[int] = Counter()
        self.original = original = redis.connection.AbstractConnection.send_packed_command
        sends = self.sends

        def counting(conn, command, check_health=True):  # type: ignore[no-untyped-def]
            sends[conn.port] += 1
            return original(conn, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
        return sends

    def __exit__(self, *exc: object) -> None:
        import redis.connection

        redis.connection.AbstractConnection.send_packed_command = self.original  # type: ignore[method-assign]
