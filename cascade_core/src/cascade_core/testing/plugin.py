"""The pytest plugin behind the conformance kit: ``--cascade-uri`` and the backend fixtures.

pytest loads this module in every session where cascade-core is installed, so it imports
nothing of Cascade at module level: the fixtures import what they need when they run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

OPTION = "--cascade-uri"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cascade", "Cascade backend conformance kit")
    group.addoption(
        OPTION,
        action="store",
        default=None,
        metavar="URI",
        help="backend URI that the Cascade conformance kit tests (python -m pytest --pyargs cascade_core.testing)",
    )


@pytest.fixture
def cascade_uri(request: pytest.FixtureRequest) -> str:
    """The URI given with ``--cascade-uri``; the test is skipped when there is none."""
    uri = request.config.getoption(OPTION)
    if not uri:
        pytest.skip(f"no backend to test: pass {OPTION} URI, for example {OPTION} sqlite:///kit.db")
    return str(uri)


def _provides(uri: str, kind: str) -> None:
    """Skip when the URI's provider offers no ``kind`` ("state" or "cache") backend."""
    from cascade_core._registry import registry
    from cascade_core._uri import BackendURI

    parsed = BackendURI.parse(uri)
    loaded = registry.load(parsed.scheme)
    if kind not in loaded.provides:
        pytest.skip(f"{parsed.scheme}:// provides no {kind} backend (only {', '.join(loaded.provides)})")


def open_state_factory(uri: str) -> Any:
    """A state-backend factory for ``uri``, resolved the way the engine resolves it."""
    from cascade_core._registry import registry
    from cascade_core._uri import BackendURI

    return registry.state_factory(BackendURI.parse(uri))


def open_cache_backend(uri: str) -> Any:
    """A cache backend for ``uri``, resolved the way the engine resolves it."""
    from cascade_core._registry import registry
    from cascade_core._uri import BackendURI

    return registry.cache_backend(BackendURI.parse(uri))


def close_quietly(obj: Any) -> None:
    """Call ``obj.close()`` when it has one (a state factory need not)."""
    close = getattr(obj, "close", None)
    if callable(close):
        close()


def run_concurrently(work: Any, arguments: list[Any]) -> list[BaseException]:
    """Call ``work(argument)`` for each argument, each in its own thread; return what they raised.

    An exception in a thread would otherwise be lost: the caller asserts the list is empty.
    """
    import threading

    errors: list[BaseException] = []

    def guarded(argument: Any) -> None:
        try:
            work(argument)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def new_run_id() -> str:
    """A run id no other test (or earlier kit run against the same store) uses."""
    return f"kit-{uuid.uuid4().hex}"


class _TrackingFactory:
    """The factory under test, remembering every run id it was called with (to clean up after)."""

    def __init__(self, factory: Any) -> None:
        self.wrapped = factory
        self.run_ids: list[str] = []

    def __call__(self, run_id: str) -> Any:
        self.run_ids.append(run_id)
        return self.wrapped(run_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


@pytest.fixture
def cascade_state_factory(cascade_uri: str) -> Iterator[Any]:
    """The state-backend factory of ``--cascade-uri`` (``run_id -> StateBackend``), closed after the test.

    Every run the test created is deleted afterwards when the factory can delete runs.
    """
    _provides(cascade_uri, "state")
    factory = _TrackingFactory(open_state_factory(cascade_uri))
    try:
        yield factory
    finally:
        delete_run = getattr(factory.wrapped, "delete_run", None)
        try:
            if callable(delete_run):
                for run_id in dict.fromkeys(factory.run_ids):
                    delete_run(run_id)
        finally:
            close_quietly(factory.wrapped)


@pytest.fixture
def cascade_state_backend(cascade_state_factory: Any) -> Iterator[Any]:
    """A state backend bound to a fresh run id; the run is deleted after the test when the store can."""
    backend = cascade_state_factory(new_run_id())
    try:
        yield backend
    finally:
        backend.close()
        delete_run = getattr(cascade_state_factory, "delete_run", None)
        if callable(delete_run):
            delete_run(backend.run_id)


@pytest.fixture
def cascade_cache_backend(cascade_uri: str) -> Iterator[Any]:
    """The cache backend of ``--cascade-uri``, closed after the test."""
    _provides(cascade_uri, "cache")
    cache = open_cache_backend(cascade_uri)
    try:
        yield cache
    finally:
        cache.close()
