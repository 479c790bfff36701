"""Real IPFS nodes for the cascade-ipfs tests, on free loopback ports, one per test session.

By default a js-ipfs node (npm ``ipfs@0.66.1``, installed by ``npm ci`` in tests/ipfs/node; the
start script there makes it offline: no bootstrap peers, no discovery, no preload nodes, so it
dials nothing). ``CASCADE_IPFS_KUBO=/path/to/ipfs`` runs the same tests against a kubo daemon
instead. Without node_modules (or the kubo binary) the tests are skipped, unless
``CASCADE_REQUIRE_IPFS=1`` (as CI sets) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).with_name("node")
REQUIRE_ENV = "CASCADE_REQUIRE_IPFS"
KUBO_ENV = "CASCADE_IPFS_KUBO"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(message: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires the IPFS tests to run", pytrace=False)
    pytest.skip(message)


class IpfsNode:
    """One IPFS node process: its RPC API on ``api_port``, a gateway, and, when ``swarm``, a
    libp2p listener on 127.0.0.1 only (for two-node tests; still no bootstrap or discovery)."""

    def __init__(self, directory: Path, *, swarm: bool = False) -> None:
        self.directory = directory
        self.api_port = free_port()
        self.gateway_port = free_port()
        self.swarm_port = free_port() if swarm else 0
        self.kubo = os.environ.get(KUBO_ENV) or None
        self.process: subprocess.Popen[bytes] | None = None
        self.peer_id = ""
        self.log = directory / "node.log"

    @property
    def uri(self) -> str:
        return f"ipfs://127.0.0.1:{self.api_port}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self) -> None:
        command, env = self._kubo_command() if self.kubo else self._js_command()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the IPFS node exited at start: {self.log.read_text()[-2000:]}", pytrace=False)
            try:
                self.peer_id = self.call("id")["ID"]
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"the IPFS node did not answer within {START_TIMEOUT:g} s: {self.log.read_text()[-2000:]}")

    def _js_command(self) -> tuple[list[str], dict[str, str]]:
        node = shutil.which("node")
        if node is None or not (NODE_DIR / "node_modules" / "ipfs-core").is_dir():
            _unavailable(f"no js-ipfs: install Node.js and run `npm ci` in {NODE_DIR}")
        assert node is not None
        repo = self.directory / "repo"
        args = [str(repo), str(self.api_port), str(self.gateway_port), str(self.swarm_port)]
        script = [node, "--require", str(NODE_DIR / "preload.cjs"), str(NODE_DIR / "start.mjs")]
        return [*script, *args], dict(os.environ)

    def _kubo_command(self) -> tuple[list[str], dict[str, str]]:
        binary = self.kubo or ""
        if not os.access(binary, os.X_OK):
            _unavailable(f"{KUBO_ENV}={binary} is not an executable kubo binary")
        env = {**os.environ, "IPFS_PATH": str(self.directory / "repo")}
        subprocess.run([binary, "init", "--profile", "test"], env=env, check=True, capture_output=True, timeout=60)
        swarm = [f"/ip4/127.0.0.1/tcp/{self.swarm_port}"] if self.swarm_port else []
        settings = {
            "Addresses.API": json.dumps(f"/ip4/127.0.0.1/tcp/{self.api_port}"),
            "Addresses.Gateway": json.dumps(f"/ip4/127.0.0.1/tcp/{self.gateway_port}"),
            "Addresses.Swarm": json.dumps(swarm),
            "Bootstrap": "[]",
            "Discovery.MDNS.Enabled": "false",
            "Routing.Type": json.dumps("none"),
        }
        for key, value in settings.items():
            subprocess.run([binary, "config", "--json", key, value], env=env, check=True, capture_output=True)
        offline = [] if self.swarm_port else ["--offline"]
        return [binary, "daemon", *offline], env

    def call(self, command: str, **params: str) -> dict:
        """POST one RPC command straight to the node (what the tests check against)."""
        query = "&".join(f"{key.replace('_', '-')}={value}" for key, value in params.items())
        url = f"http://127.0.0.1:{self.api_port}/api/v0/{command}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as answer:
            return json.loads(answer.read() or b"{}")

    def refs(self, cid: str) -> list[str]:
        """The CIDs a block links to (``refs``, one JSON object per line; kubo and js-ipfs alike)."""
        url = f"http://127.0.0.1:{self.api_port}/api/v0/refs?arg={cid}"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as answer:
            return [json.loads(line)["Ref"] for line in answer.read().splitlines() if line.strip()]

    def pinned(self) -> set[str]:
        from cascade_ipfs.cid import canonical

        return {canonical(key) for key in self.call("pin/ls", type="recursive")["Keys"]}

    def blocks(self) -> int:
        """How many blocks the node's repository holds."""
        return int(self.call("repo/stat")["NumObjects"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsNode]:
    """The session's offline IPFS node."""
    node = IpfsNode(tmp_path_factory.mktemp("ipfs"))
    node.start()
    yield node
    node.stop()


@pytest.fixture
def ipfs_uri(ipfs_node: IpfsNode) -> str:
    """``ipfs://127.0.0.1:<port>/t-<random>``: the session's node, a fresh index folder per test."""
    return f"{ipfs_node.uri}/t-{os.urandom(4).hex()}"


@pytest.fixture(scope="session")
def ipfs_node_class() -> type[IpfsNode]:
    """IpfsNode, for tests that start nodes of their own (test files are no package here)."""
    return IpfsNode
