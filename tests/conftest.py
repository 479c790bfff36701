"""Fixtures shared by every test: isolated in-process stores and a clean backend registry."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cascade_core.testing.state import isolated_process_state

TEST_TIME_LIMIT = 600  # seconds: a hung test dumps every thread's stack and ends the session


@pytest.fixture(autouse=True)
def _bounded_test_time():
    """A test that hangs (a lost wake-up, a cluster that never answers) must not hold CI for its
    whole budget: after TEST_TIME_LIMIT seconds the stacks are printed and the run exits."""
    import faulthandler

    faulthandler.dump_traceback_later(TEST_TIME_LIMIT, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def _isolated_process_state():
    """Each test starts with empty memory:// stores, no open blob stores and no runtime backend
    registrations of an earlier test."""
    with isolated_process_state():
        yield


class Counter:
    """Counts executions per label; thread-safe enough for the GIL-bound increments here."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def hit(self, label: str) -> None:
        self.calls[label] = self.calls.get(label, 0) + 1

    def __getitem__(self, label: str) -> int:
        return self.calls.get(label, 0)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def counter() -> Counter:
    return Counter()


@pytest.fixture
def json_state(tmp_path):
    """(store, factory): a sqlite state store at tmp_path/state.db whose backends say
    ``serializer = "json"`` (as ``?serializer=json`` does on redis)."""
    from cascade_core.backends.sqlite import SqliteStateStore

    store = SqliteStateStore(tmp_path / "state.db")

    def factory(run_id: str):
        backend = store(run_id)
        backend.serializer = "json"
        return backend

    return store, factory


def _test_module(file_name: str):
    """A helper module beside this conftest (not a package: tests run with --import-mode=importlib)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name(file_name)
    spec = importlib.util.spec_from_file_location(f"cascade_test_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Helper modules that test files import by name.
sys.modules.setdefault("cascade_test_cli", _test_module("cli_helpers.py"))
sys.modules.setdefault("cascade_test_plugin_dist", _test_module("plugin_dist.py"))


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``check()`` until it returns something true (and return that); fail naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(interval)


@pytest.fixture(name="wait_until", scope="session")
def _wait_until() -> Callable[..., Any]:
    """wait_until(check, timeout, what): poll against a deadline instead of a fixed sleep."""
    return wait_until


@pytest.fixture(scope="session")
def redis_servers():
    """tests/redis_servers.py: RedisServer (a real redis-server on a free port), free_port, PASSWORD."""
    return _test_module("redis_servers.py")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory, redis_servers: Any) -> Iterator[Any]:
    """The session's redis-server (skipped without the binary; a failure with CASCADE_REQUIRE_REDIS=1)."""
    server = redis_servers.RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_uri(redis_server: Any) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of the session's server, emptied before each test."""
    redis_server.flushall()
    yield redis_server.uri


class StoreUnderTest:
    """One state-and-cache store a scenario runs on: its URI, and its stored bytes read and
    overwritten through the backend protocols (as anyone who can write to the store could)."""

    def __init__(self, kind: str, uri: str) -> None:
        self.kind = kind
        self.uri = uri

    def state(self, run_id: str, serializer: str = "pickle") -> Any:
        """The run's state backend, opened by URI (``serializer="json"`` as ``?serializer=json``)."""
        from cascade_core import BackendURI
        from cascade_core._plugins.registry import registry

        backend = registry.state_factory(BackendURI.parse(self.uri))(run_id)
        backend.serializer = serializer
        return backend

    def json_state(self) -> Callable[[str], Any]:
        """A ``state_backend=`` factory whose backends read and write json only."""
        return lambda run_id: self.state(run_id, "json")

    def cache(self, serializer: str = "pickle") -> Any:
        from cascade_core import BackendURI
        from cascade_core._plugins.registry import registry

        backend = registry.cache_backend(BackendURI.parse(self.uri))
        backend.serializer = serializer
        return backend

    def run_lease_free(self, run_id: str) -> bool:
        """Whether no driver holds the run lease of ``run_id`` (it was released, or it expired)."""
        backend = self.state(run_id)
        try:
            return not backend.lease_holders(["~run"])
        finally:
            backend.close()

    def stored_ids(self, run_id: str) -> set[str]:
        """The node ids whose results the run has stored."""
        backend = self.state(run_id)
        try:
            return set(backend.result_ids())
        finally:
            backend.close()

    def leases_left(self, run_lease: bool = True) -> list[str]:
        """The live leases and cache locks the store holds (what drivers left behind), for the
        kinds that other processes share: sqlite and redis. ``run_lease=False`` leaves out the
        run lease (``~run``), which sharing drivers that leave together may leave to expire."""
        if self.kind == "redis":
            import redis

            with redis.Redis.from_url(self.uri) as client:
                keys = [*client.keys("cascade:lease:*"), *client.keys("cascade:lock:*")]
            names = [key.decode() for key in keys]
        elif self.kind == "sqlite":
            import sqlite3

            conn = sqlite3.connect(self.uri.removeprefix("sqlite:///"))
            try:
                rows = conn.execute("SELECT scope, name FROM leases WHERE expires_at > ?", (time.time(),)).fetchall()
            finally:
                conn.close()
            names = [f"{scope}/{name}" for scope, name in rows]
        else:
            raise NotImplementedError(f"leases_left() of a {self.kind} store")
        return sorted(name for name in names if run_lease or not name.endswith("~run"))

    def __repr__(self) -> str:
        return f"StoreUnderTest({self.kind})"


@pytest.fixture(scope="session")
def store_at() -> Callable[[str], StoreUnderTest]:
    """store_at(uri): the store a test started elsewhere (another process), to poll what it holds."""
    return lambda uri: StoreUnderTest("uri", uri)


STORE_KINDS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]
SHARED_STORE_KINDS = STORE_KINDS[1:]  # the ones other processes see


def _store_under_test(request: pytest.FixtureRequest, tmp_path) -> StoreUnderTest:
    kind = request.param
    if kind == "memory":
        return StoreUnderTest(kind, "memory://")
    if kind == "sqlite":
        return StoreUnderTest(kind, f"sqlite:///{tmp_path / 'store.db'}")
    return StoreUnderTest(kind, request.getfixturevalue("redis_uri"))


@pytest.fixture(params=STORE_KINDS)
def any_state(request: pytest.FixtureRequest, tmp_path) -> StoreUnderTest:
    """The same scenario on memory://, sqlite:// and a real redis-server (whose param skips
    without the binary, and fails under CASCADE_REQUIRE_REDIS=1)."""
    return _store_under_test(request, tmp_path)


@pytest.fixture(params=SHARED_STORE_KINDS)
def any_shared_state(request: pytest.FixtureRequest, tmp_path) -> StoreUnderTest:
    """As ``any_state``, for scenarios of several processes: sqlite:// and redis:// only."""
    return _store_under_test(request, tmp_path)


@pytest.fixture(scope="session")
def drivers():
    """tests/drivers.py: start several driver processes on one store and count executions."""
    return _test_module("drivers.py")


@pytest.fixture(scope="session")
def crashes():
    """tests/crashes.py: drivers that crash, and the driver that comes next."""
    return _test_module("crashes.py")


@pytest.fixture(scope="session")
def build_wheel():
    """build_wheel(project, directory) -> the wheel pip builds from ./<project> into ``directory``."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def build(project: str, directory: Path) -> Path:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--disable-pip-version-check",
                "-w",
                str(directory),
                str(root / project),
            ],
            check=True,
            capture_output=True,
        )
        (wheel,) = directory.glob("*.whl")
        return wheel

    return build
