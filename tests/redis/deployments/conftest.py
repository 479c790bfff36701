"""Real local deployments for the Sentinel and Cluster tests, started once per session on free ports.

- ``redis_cluster``: three masters started with ``--cluster-enabled yes``, joined by
  ``redis-cli --cluster create ... --cluster-yes``, ready once every node says ``cluster_state:ok``.
- ``redis_sentinel``: a master, one replica and one sentinel (``redis-server sentinel.conf --sentinel``)
  watching the service ``cascade``.

Without redis-server or redis-cli the tests skip, unless CASCADE_REQUIRE_REDIS=1 (CI) makes that a
failure. Nothing here touches a redis these fixtures did not start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "CASCADE_REQUIRE_REDIS"
SERVICE = "cascade"
DATA_PASSWORD = "d4ta-pa55word"  # the master's and the replica's
SENTINEL_PASSWORD = "s3ntinel-pa55word"  # the sentinel's own


def _needed(binary: str, env: str | None = None) -> str:
    found = (os.environ.get(env) if env else None) or shutil.which(binary)
    if not found:
        message = f"no {binary} on PATH: install redis (Debian: redis-server, redis-tools)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires the redis tests to run", pytrace=False)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Node:
    """One redis-server (or sentinel) process of a deployment."""

    def __init__(self, directory: Path, *extra: str, sentinel: bool = False, password: str | None = None) -> None:
        self.directory = directory
        self.password = password
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.extra = list(extra)
        self.sentinel = sentinel
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = _needed("redis-server", "CASCADE_REDIS_SERVER")
        if self.sentinel:
            args = [binary, str(self.directory / "sentinel.conf"), "--sentinel"]
        else:
            args = [binary, "--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb"]
        args += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--daemonize", "no", "--logfile", "redis.log", *self.extra]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.wait_until(lambda client: client.ping(), "answers PING")

    def client(self, **kwargs: Any) -> Any:  # -> redis.Redis; the caller closes it
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5, **kwargs)

    def wait_until(self, check: Any, what: str, timeout: float = 20.0) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on {self.port} exited with {self.process.returncode}:\n{log}")
            client = self.client()
            try:
                if check(client):
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                pass
            finally:
                client.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis on {self.port} never {what}")
            time.sleep(0.05)

    def command_calls(self) -> dict[str, int]:
        """Calls per command since start (``INFO commandstats``), without the INFO asking."""
        client = self.client()
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
        calls.pop("info", None)
        return calls

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
            self.process.wait(timeout=10)
            self.process = None


class LocalCluster:
    """A Redis Cluster of ``masters`` masters (no replicas) on 127.0.0.1."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        # The bus port defaults to port + 10000, which a free port above 55535 cannot have: name one.
        self.nodes = [
            Node(directory / f"node{i}", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
            for i in range(masters)
        ]
        for node in self.nodes:
            node.extra += ["--cluster-port", str(free_port())]

    @property
    def uri(self) -> str:
        return "redis+cluster://" + ",".join(node.address for node in self.nodes[:2])

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = _needed("redis-cli")
        command = [cli, "--cluster", "create", *(node.address for node in self.nodes), "--cluster-yes"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        for node in self.nodes:
            node.wait_until(lambda client: client.cluster("INFO")["cluster_state"] == "ok", "is ok")
            # Every node must know every master before clients rely on its CLUSTER SLOTS.
            node.wait_until(lambda client: len(client.cluster("SLOTS")) == len(self.nodes), "knows every master")

    def client(self) -> Any:  # -> redis.cluster.RedisCluster; the caller closes it
        from redis.cluster import ClusterNode, RedisCluster

        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", node.port) for node in self.nodes])

    def flushall(self) -> None:
        for node in self.nodes:
            client = node.client()
            try:
                client.flushall()
            finally:
                client.close()

    def command_calls(self) -> list[dict[str, int]]:
        return [node.command_calls() for node in self.nodes]

    def all_keys(self) -> list[bytes]:
        found: list[bytes] = []
        for node in self.nodes:
            client = node.client()
            try:
                found += list(client.scan_iter(count=1000))
            finally:
                client.close()
        return found

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


SENTINEL_CONF = """port {port}
bind 127.0.0.1
dir {dir}
sentinel monitor {service} 127.0.0.1 {master} 1
sentinel down-after-milliseconds {service} 2000
sentinel failover-timeout {service} 10000
sentinel parallel-syncs {service} 1
sentinel auth-pass {service} {data_password}
requirepass {password}
"""


class LocalSentinel:
    """A master, one replica and one sentinel watching them as the service ``SERVICE``; the data nodes
    want ``DATA_PASSWORD``, the sentinel ``SENTINEL_PASSWORD``."""

    def __init__(self, directory: Path) -> None:
        auth = ("--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD)
        self.data = [
            Node(directory / "a", *auth, password=DATA_PASSWORD),
            Node(directory / "b", *auth, password=DATA_PASSWORD),
        ]
        self.data[1].extra += ["--replicaof", "127.0.0.1", str(self.data[0].port)]
        self.sentinel = Node(directory / "sentinel", sentinel=True, password=SENTINEL_PASSWORD)

    @property
    def uri(self) -> str:
        return (
            f"redis+sentinel://:{DATA_PASSWORD}@{self.sentinel.address}/{SERVICE}?sentinel_password={SENTINEL_PASSWORD}"
        )

    def start(self) -> None:
        for node in self.data:
            node.start()
        self.wait_in_sync()
        conf = SENTINEL_CONF.format(
            port=self.sentinel.port,
            dir=self.sentinel.directory,
            service=SERVICE,
            master=self.data[0].port,
            data_password=DATA_PASSWORD,
            password=SENTINEL_PASSWORD,
        )
        (self.sentinel.directory / "sentinel.conf").write_text(conf)
        self.sentinel.start()
        # The sentinel must have found, and be talking to, the replica before it can fail over to it.
        self.sentinel.wait_until(
            lambda c: any(not r["is_disconnected"] and not r["is_sdown"] for r in c.sentinel_slaves(SERVICE)),
            "finds the replica",
        )

    def master(self) -> Node:
        """The node the sentinel names as master now."""
        client = self.sentinel.client()
        try:
            _, port = client.sentinel_get_master_addr_by_name(SERVICE)
        finally:
            client.close()
        return next(node for node in self.data if node.port == int(port))

    def replica(self) -> Node:
        master = self.master()
        return next(node for node in self.data if node is not master)

    def wait_in_sync(self) -> None:
        """Until the master has one replica online and that replica's link is up."""
        master = self.master() if self.sentinel.process else self.data[0]
        replica = next(node for node in self.data if node is not master)
        master.wait_until(lambda c: c.info("replication").get("connected_slaves") == 1, "has its replica")
        replica.wait_until(lambda c: c.info("replication").get("master_link_status") == "up", "is in sync")

    def failover(self) -> tuple[Node, Node]:
        """``SENTINEL FAILOVER``; returns (old master, new master) once the sentinel names the new one."""
        old = self.master()
        client = self.sentinel.client()
        try:
            client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        finally:
            client.close()
        deadline = time.monotonic() + 30
        while self.master() is old:
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinel never named a new master")
            time.sleep(0.05)
        new = self.master()
        new.wait_until(lambda c: c.info("replication").get("role") == "master", "is master")
        # The sentinel turns the old master into a replica at its next look (INFO every 10 s); do it now.
        client = old.client()
        try:
            client.replicaof("127.0.0.1", new.port)
        finally:
            client.close()
        return old, new

    def flushall(self) -> None:
        client = self.master().client()
        try:
            client.flushall()
            client.execute_command("WAIT", 1, 5000)
        finally:
            client.close()

    def stop(self) -> None:
        self.sentinel.stop()
        for node in self.data:
            node.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_uri(redis_cluster: LocalCluster) -> str:
    """``redis+cluster://`` naming two of the three masters as seeds, emptied before each test."""
    redis_cluster.flushall()
    return redis_cluster.uri


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSentinel]:
    deployment = LocalSentinel(tmp_path_factory.mktemp("sentinel"))
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def sentinel_uri(redis_sentinel: LocalSentinel) -> str:
    """``redis+sentinel://:<password>@<sentinel>/cascade?sentinel_password=...``, emptied (on the current
    master) before each test."""
    redis_sentinel.wait_in_sync()
    redis_sentinel.flushall()
    return redis_sentinel.uri
