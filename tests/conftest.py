"""Fixtures shared by every test: isolated in-process stores and a clean backend registry."""

from __future__ import annotations

import pytest

from cascade_core._plugins.registry import registry
from cascade_core._store import blob_refs
from cascade_core.backends import memory
from cascade_core.blobs import memory as blob_memory

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
    registrations."""
    _clear_stores()
    runtime = dict(registry._runtime)
    yield
    _clear_stores()
    registry._runtime.clear()
    registry._runtime.update(runtime)
    registry._loaded.clear()


def _clear_stores() -> None:
    memory._STATE_STORES.clear()
    memory._CACHES.clear()
    blob_refs._OPEN.clear()  # blob stores opened by URI, kept per process
    blob_memory._STORES.clear()


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
