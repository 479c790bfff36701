"""The pytest plugin behind the conformance kit: ``--cascade-uri`` and the backend fixtures.

pytest loads this module in every session where cascade-core is installed, so it imports
nothing of Cascade at module level: the fixtures import what they need when they run.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OPTION = "--cascade-uri"
TIMEOUT_OPTION = "--cascade-timeout"
DEFAULT_TIMEOUT = 120.0  # seconds each phase of a kit test may take
KIT = Path(__file__).resolve().parent
USAGE = f"python -m pytest --pyargs cascade_core.testing {OPTION} URI"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cascade", "Cascade backend conformance kit")
    group.addoption(
        OPTION,
        action="store",
        default=None,
        metavar="URI",
        help="backend URI that the Cascade conformance kit tests (python -m pytest --pyargs cascade_core.testing)",
    )
    group.addoption(
        TIMEOUT_OPTION,
        action="store",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"fail a kit test that takes longer than this (default {DEFAULT_TIMEOUT:g}; 0: no limit)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    with _time_limit(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    with _time_limit(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Any:
    with _time_limit(item):
        return (yield)


@contextlib.contextmanager
def _time_limit(item: pytest.Item) -> Iterator[None]:
    """Fail a kit test that hangs (an executor that never reports, a store that never answers) with
    a message, instead of holding the session forever. SIGALRM interrupts the main thread's waits;
    without it (Windows, or a test outside the main thread) there is no limit."""
    import signal
    import threading

    seconds = item.config.getoption(TIMEOUT_OPTION) if _in_kit(item) else 0
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not seconds or seconds <= 0 or not usable:
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 5.0)  # again if the test's cleanup hangs too
        pytest.fail(
            broken(
                f"{item.name} did not finish within {seconds:g} s ({TIMEOUT_OPTION} raises the limit)",
                "an executor calls done(outcome) exactly once per call, and a store answers every call or raises "
                "BackendUnavailableError (likely an executor that never reported an outcome, or a store that hangs)",
                "docs/executors.md#the-contract, docs/plugins.md#2-the-backends",
            ),
            pytrace=True,
        )

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def broken(what: str, rule: str, section: str) -> str:
    """A kit assertion's message: what the plugin did, the contract rule it broke (in the docs'
    words) and where the docs state it."""
    return f"{what}: {rule} (see {section})"


def mismatch(got: Any, expected: Any) -> str:
    """How ``got`` differs from ``expected`` (a dict or a set), in a few words for a kit message."""
    if not isinstance(got, (dict, set, frozenset)):
        return f"a {type(got).__name__}, not a {type(expected).__name__}"
    other = []
    if isinstance(got, dict) and isinstance(expected, dict):
        other = [key for key in expected if key in got and got[key] != expected[key]]
    differences = (
        ("without", [key for key in expected if key not in got]),
        ("with extra", [key for key in got if key not in expected]),
        ("with other values for", other),
    )
    return ", ".join(f"{label} {_few(keys)}" for label, keys in differences if keys) or "no difference in keys"


def _few(keys: list[Any]) -> str:
    shown = ", ".join(repr(key[:30] + "..." if isinstance(key, str) and len(key) > 33 else key) for key in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """When the kit's own tests are selected, refuse to run them without a URI that resolves.

    A kit that skips or errors on every test would tell a plugin author nothing; this says what
    is wrong in one line and exits 4. Sessions that select none of the kit's tests (a plugin's
    own test suite, say) are left alone.
    """
    if session.config.getoption("collectonly") or not any(_in_kit(item) for item in session.items):
        return
    uri = session.config.getoption(OPTION)
    if not uri:
        raise pytest.UsageError(f"the Cascade conformance kit needs a backend to test: {USAGE}")
    problem = _unresolved(str(uri))
    if problem:
        raise pytest.UsageError(f"{OPTION}: {problem}")


def _in_kit(item: pytest.Item) -> bool:
    path = getattr(item, "path", None)
    return path is not None and Path(path).resolve().parent == KIT


def _unresolved(uri: str) -> str | None:
    """Why ``uri`` cannot be opened the way the engine opens it (one masked line), or None."""
    from cascade_core._plugins.registry import registry
    from cascade_core.plugin import CascadeError, mask_text, parse_uri

    try:
        parsed = parse_uri(uri)
        loaded = registry.load(parsed.scheme)
        if "state" in loaded.provides:
            factory = registry.state_factory(parsed)
            try:
                backend = factory(new_run_id())
                try:
                    backend.get_run_info()  # one read: is the store there at all?
                finally:
                    backend.close()
            finally:
                close_quietly(factory)
        if "cache" in loaded.provides:
            cache = registry.cache_backend(parsed)
            try:
                cache.get_many([new_run_id()])
            finally:
                cache.close()
        if "executor" in loaded.provides:
            open_executor(uri).close()
        if "blobs" in loaded.provides:
            open_blob_store(uri).exists("sha256:" + "0" * 64)  # one read: is the store there at all?
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, CascadeError):  # a backend should translate its driver's errors
            text = f"opening it raised {type(exc).__name__}, not a CascadeError: {text}"
        return mask_text(text, uri)
    if not loaded.provides:
        return f"{parsed.scheme}:// provides no state backend, cache backend, executor or blob store"
    return None


@pytest.fixture
def cascade_uri(request: pytest.FixtureRequest) -> str:
    """The URI given with ``--cascade-uri``; the test is skipped when there is none."""
    uri = request.config.getoption(OPTION)
    if not uri:
        pytest.skip(f"no backend to test: pass {OPTION} URI, for example {OPTION} sqlite:///kit.db")
    return str(uri)


def _provides(uri: str, kind: str) -> None:
    """Skip when the URI's provider offers no ``kind`` ("state", "cache" or "executor")."""
    from cascade_core._plugins.registry import registry
    from cascade_core.plugin import parse_uri

    parsed = parse_uri(uri)
    loaded = registry.load(parsed.scheme)
    if kind not in loaded.provides:
        pytest.skip(f"{parsed.scheme}:// provides no {kind} backend (only {', '.join(loaded.provides)})")


def open_state_factory(uri: str) -> Any:
    """A state-backend factory for ``uri``, resolved the way the engine resolves it."""
    from cascade_core._plugins.registry import registry
    from cascade_core.plugin import parse_uri

    return registry.state_factory(parse_uri(uri))


def open_executor(uri: str) -> Any:
    """The executor for ``uri``, resolved the way the engine resolves it (the caller closes it)."""
    from cascade_core._plugins.resolve import resolve_executor

    return resolve_executor(uri).executor


@pytest.fixture
def cascade_executor_uri(cascade_uri: str) -> str:
    """``--cascade-uri`` when its provider offers an executor; the test is skipped otherwise."""
    _provides(cascade_uri, "executor")
    return cascade_uri


def open_blob_store(uri: str) -> Any:
    """The blob store for ``uri`` (``?threshold=`` allowed), opened the way the engine opens it."""
    from cascade_core._store.blob_refs import resolve_blobs

    spec = resolve_blobs(uri)
    assert spec is not None
    return spec.store


def open_new_blob_store(uri: str) -> Any:
    """A store object of its own for ``uri`` (the hook called again), not the one the process shares."""
    from cascade_core._plugins.registry import registry
    from cascade_core.plugin import parse_uri

    parsed = parse_uri(uri)
    return registry.blob_store(parsed.replace(query=tuple((k, v) for k, v in parsed.query if k != "threshold")))


@pytest.fixture
def cascade_blob_store(cascade_uri: str) -> Any:
    """The blob store of ``--cascade-uri``; the test is skipped when its provider offers none."""
    _provides(cascade_uri, "blobs")
    return open_blob_store(cascade_uri)


def open_cache_backend(uri: str) -> Any:
    """A cache backend for ``uri``, resolved the way the engine resolves it."""
    from cascade_core._plugins.registry import registry
    from cascade_core.plugin import parse_uri

    return registry.cache_backend(parse_uri(uri))


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


def check_declared_attributes(owner: Any) -> None:
    """The attributes the engine reads (``trusted_store``, ``serializer``, ``max_payload_bytes``,
    ``max_payload_option``), when present, have usable values."""
    where = "docs/backends.md#optional-capabilities"
    if hasattr(owner, "trusted_store"):
        assert type(owner.trusted_store) is bool, broken(
            f"trusted_store is {owner.trusted_store!r}", "trusted_store is a bool; absent means False", where
        )
    if hasattr(owner, "serializer"):
        assert owner.serializer in ("pickle", "json"), broken(
            f"serializer is {owner.serializer!r}", 'serializer is "pickle" or "json", default pickle', where
        )
    limit = getattr(owner, "max_payload_bytes", None)
    if limit is not None:
        assert type(limit) is int and limit > 0, broken(
            f"max_payload_bytes is {limit!r}", "max_payload_bytes is an int above 0 (or absent)", where
        )
    option = getattr(owner, "max_payload_option", None)
    if option is not None:
        assert isinstance(option, str) and option, broken(
            f"max_payload_option is {option!r}",
            "max_payload_option is the name of the URI option that raises that limit",
            where,
        )


def caller_keys(info: dict[str, str]) -> dict[str, str]:
    """Run info without the timestamps a backend may record itself."""
    return {key: value for key, value in info.items() if key not in ("created", "updated")}


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
