"""The redis tests' own servers: one requiring a password, one a test may kill, a closed port.

The session's shared server (``redis_server``, ``redis_uri``) and the class that runs them
(tests/redis_servers.py) come from tests/conftest.py, so that core tests can use them too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def auth_redis_server(tmp_path_factory: pytest.TempPathFactory, redis_servers: Any) -> Iterator[Any]:
    """A second server that requires the password ``redis_servers.PASSWORD``."""
    server = redis_servers.RedisServer(tmp_path_factory.mktemp("redis-auth"), password=redis_servers.PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def closed_port(redis_servers: Any) -> int:
    """A port of 127.0.0.1 where nothing listens."""
    return redis_servers.free_port()


@pytest.fixture
def own_redis_server(tmp_path: Path, redis_servers: Any) -> Iterator[Any]:
    """A server of this test's own, which it may kill and restart."""
    server = redis_servers.RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()
