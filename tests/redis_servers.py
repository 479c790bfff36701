"""Real redis-server processes for tests, each on a free port of 127.0.0.1 (the fixtures that
start them are in tests/conftest.py and tests/redis/conftest.py).

Never touches a redis that a test did not start (FLUSHALL goes only to our own servers).
Without the redis-server binary (on PATH, or named by CASCADE_REDIS_SERVER) the tests are
skipped, unless CASCADE_REQUIRE_REDIS=1 makes that a failure (for CI, where a silent skip
would hide a broken setup).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REQUIRE_ENV = "CASCADE_REQUIRE_REDIS"
BINARY_ENV = "CASCADE_REDIS_SERVER"
PASSWORD = "s3cret-Pa55word"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    """The redis-server to start: ``$CASCADE_REDIS_SERVER``, else the one on PATH."""
    binary = os.environ.get(BINARY_ENV) or shutil.which("redis-server")
    if not binary or not os.access(binary, os.X_OK):
        message = f"no redis-server binary ({binary or 'not on PATH'}): install redis or set {BINARY_ENV}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires the redis tests to run", pytrace=False)
        pytest.skip(message)
    return binary


class RedisServer:
    """A redis-server child process that tests can stop, kill and restart on the same port."""

    def __init__(self, directory: Path, *, password: str | None = None, port: int | None = None) -> None:
        self.binary = redis_binary()
        self.directory = directory
        self.password = password
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.appendonly = False
        self._admin = None  # one connection for INFO, so that its handshake is not counted as ours

    @property
    def uri(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    def client(self):  # -> redis.Redis; the caller closes it
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5)

    def start(self, *, appendonly: bool = False) -> None:
        """Start the server (with an append-only file when asked) and wait until it answers PING."""
        self.appendonly = appendonly
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--logfile",
            "redis.log",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{log}")
            client = self.client()
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
            finally:
                client.close()

    def stop(self) -> None:
        """A clean shutdown (SIGTERM)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """A crash (SIGKILL): nothing is flushed beyond what appendfsync already wrote."""
        self._end(signal.SIGKILL)

    def restart(self, *, appendonly: bool = True) -> None:
        """Stop, then start again on the same port (with an append-only file by default)."""
        self.stop()
        self.start(appendonly=appendonly)

    def _end(self, sig: int) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=10)
        self.process = None

    def flushall(self) -> None:
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def command_calls(self) -> dict[str, int]:
        """Calls per command since start (``INFO commandstats``), e.g. ``{"hset": 3}``."""
        if self._admin is None:
            self._admin = self.client()
            self._admin.ping()
        stats = self._admin.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}

    def calls_since(self, before: dict[str, int]) -> dict[str, int]:
        """Commands run since the ``command_calls()`` snapshot ``before``, without the INFO that took it."""
        after = self.command_calls()
        delta = {name: count - before.get(name, 0) for name, count in after.items()}
        delta["info"] = delta.get("info", 0) - 1
        return {name: count for name, count in delta.items() if count}

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.process is not None})"
