"""What the engine does with what it cannot use: a cache entry that no longer loads, a result
over a backend's size limit, an exception that cannot describe itself, SystemExit in a task."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import cascade_core as cs

REFUSED = "ignoring cache entry"


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


# -- a cache entry whose class was renamed is a miss --------------------------------------------

VALUES_V1 = """
class Point:
    def __init__(self, x):
        self.x = x

def make(n):
    return Point(n)
"""

# The class is renamed: a stored Point no longer unpickles, though its checksum still passes.
VALUES_V2 = VALUES_V1.replace("Point", "Spot")


@pytest.fixture
def values_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A module ``stale_values`` on sys.path; ``rewrite(text)`` changes it for the next import."""
    path = tmp_path / "stale_values.py"
    path.write_text(VALUES_V1)
    monkeypatch.syspath_prepend(str(tmp_path))

    def rewrite(text: str) -> None:
        path.write_text(text)
        sys.modules.pop("stale_values", None)
        importlib.invalidate_caches()

    yield rewrite
    sys.modules.pop("stale_values", None)


@pytest.mark.parametrize("lookup", ["prefetch", "when ready"])
def test_a_cache_entry_that_no_longer_loads_is_recomputed_overwritten_and_logged_once(
    tmp_path: Path, values_module, caplog: pytest.LogCaptureFixture, lookup: str
):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    made: list[int] = []

    @cs.task
    def seed() -> int:
        return 7

    @cs.task(cache=True)
    def make(n: int):
        made.append(n)
        return importlib.import_module("stale_values").make(n)

    @cs.task
    def describe(point) -> str:
        return f"{type(point).__name__}({point.x})"

    def target():
        # "prefetch": the key needs no computed value; "when ready": it waits for seed's value.
        return describe(make(7) if lookup == "prefetch" else make(seed()))

    assert cs.run(target(), state_backend=uri, cache_backend=uri, run_id="first") == "Point(7)"
    assert made == [7]

    values_module(VALUES_V2)
    caplog.set_level(logging.WARNING, logger="cascade")
    report = cs.Engine(uri, uri).execute(target(), run_id="second")
    assert (report.status, report.value) == ("succeeded", "Spot(7)")
    assert made == [7, 7]  # a miss: the task ran again
    assert report.counts["cached"] == 0
    refused = [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()]
    assert len(refused) == 1, refused  # once, not again when looked up under its cache lock
    assert "does not unpickle" in refused[0] and "runs again and overwrites it" in refused[0]

    caplog.clear()
    report = cs.Engine(uri, uri).execute(target(), run_id="third")
    assert (report.status, report.value) == ("succeeded", "Spot(7)")
    assert made == [7, 7]  # the entry was overwritten: served from the cache
    assert report.counts["cached"] == 1
    assert not [r for r in caplog.records if REFUSED in r.getMessage()]


def test_a_refused_hit_makes_its_upstream_hit_needed(tmp_path: Path, values_module):
    """The value of a refused entry's upstream hit was not needed before; now it is loaded."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    runs: list[str] = []

    @cs.task(cache=True)
    def base() -> int:
        runs.append("base")
        return 5

    @cs.task(cache=True)
    def make(n: int):
        runs.append("make")
        return importlib.import_module("stale_values").make(n)

    @cs.task
    def describe(point) -> str:
        return f"{type(point).__name__}({point.x})"

    assert cs.run(describe(make(base())), state_backend=uri, cache_backend=uri) == "Point(5)"
    values_module(VALUES_V2)
    report = cs.Engine(uri, uri).execute(describe(make(base())))
    assert report.value == "Spot(5)"
    assert runs == ["base", "make", "make"]  # base came from the cache, make ran again
    assert (report.counts["cached"], report.counts["executed"]) == (1, 2)


# -- the size limit names the option of the backend that refused ----------------------------------


class _CappedState(cs.MemoryStateBackend):
    max_payload_bytes = 100  # a third-party backend that names no option


class _NamedCapState(_CappedState):
    max_payload_option = "row_limit"


@cs.task
def _big() -> bytes:
    return b"x" * 1000


@pytest.mark.parametrize(
    ("backend", "advice"),
    [(_CappedState, "use a backend that allows more"), (_NamedCapState, "raise the backend's row_limit")],
)
def test_the_size_limit_error_names_the_option_of_the_backend_that_refused(backend, advice):
    store = cs.MemoryStateStore()
    with pytest.raises(cs.TaskFailed) as info:
        cs.run(_big(), state_backend=lambda run_id: backend(run_id, store))
    message = str(info.value.cause)
    assert isinstance(info.value.cause, cs.SerializationError)
    assert "over the state backend's limit of 100 bytes: return a smaller value or " + advice in message
    assert "max_value_size" not in message


def test_memory_and_sqlite_declare_no_size_limit(tmp_path: Path):
    """They store any size, so there is no option to name (redis: tests/redis/test_redis_hang.py)."""
    from cascade_core._plugins.registry import registry

    for uri in ("memory://", f"sqlite:///{tmp_path / 'store.db'}"):
        parsed = cs.BackendURI.parse(uri)
        state = registry.state_factory(parsed)("limits")
        cache = registry.cache_backend(parsed)
        for backend in (state, cache):
            assert getattr(backend, "max_payload_bytes", None) is None
        assert cs.run(_big(), state_backend=uri, cache_backend=uri) == b"x" * 1000


# -- an exception that cannot describe itself still fails its task --------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this message cannot be read")


@pytest.mark.parametrize("workers", [1, 4])
def test_an_exception_whose_str_raises_fails_its_task(tmp_path: Path, workers: int):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    calls: list[int] = []

    failed: list[BaseException] = []

    class Watcher:
        @cs.hookimpl
        def cascade_task_failed(self, error):
            failed.append(error)

    @cs.task(retries=1)
    def broken(i: int) -> int:
        calls.append(i)
        raise Unprintable()

    @cs.task
    def total(values: list) -> int:
        return sum(values)

    engine = cs.Engine(uri, uri, max_workers=workers, observers=[Watcher()])
    with pytest.raises(cs.TaskFailed) as info:
        engine.run(total([broken(1), broken(2)]), run_id="unprintable")
    assert isinstance(info.value.cause, Unprintable)
    assert info.value.task.endswith("broken")
    assert "\n" not in str(info.value)
    assert sorted(calls) == [1, 1, 2, 2]  # retried, then failed: the run went on to the end
    assert [type(error) for error in failed] == [Unprintable, Unprintable]

    shown = json.loads(_cli(tmp_path, "runs", "show", "unprintable", "--state", uri, "--json").stdout)
    assert shown["info"]["status"] == "failed"
    assert "Unprintable" in shown["info"]["error"]


FLOW_UNPRINTABLE = """
import cascade_core as cs


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("this message cannot be read")


@cs.task
def broken() -> int:
    raise Unprintable()


@cs.task
def after(value: int) -> int:
    return value


target = after(broken())
"""


def test_the_cli_reports_an_unprintable_task_exception_as_a_task_failure(tmp_path: Path):
    (tmp_path / "flow.py").write_text(FLOW_UNPRINTABLE)
    result = _cli(tmp_path, "run", "flow.py:target", "--state", "sqlite:///store.db", "--run-id", "cli-unprintable")
    assert result.returncode == 1, result.stderr  # the task-failed code, not 2 (bad input)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken" in errors[0] and "Unprintable" in errors[0], result.stderr


# -- SystemExit in a task stops the run ------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 4])
def test_systemexit_in_a_task_stops_the_run_records_it_as_crashed_and_propagates(workers: int):
    store = cs.MemoryStateStore()
    ran: list[str] = []

    @cs.task
    def first() -> int:
        ran.append("first")
        return 1

    @cs.task(retries=2)
    def quits(value: int) -> int:
        ran.append("quits")
        raise SystemExit(3)

    @cs.task
    def after(value: int) -> int:
        ran.append("after")
        return value

    engine = cs.Engine(store, max_workers=workers)
    with pytest.raises(SystemExit) as info:
        engine.run(after(quits(first())), run_id="exits")
    assert info.value.code == 3
    assert ran == ["first", "quits"]  # not retried; nothing after it started
    run_info = store("exits").get_run_info()
    assert (run_info["status"], run_info["error"]) == ("crashed", "SystemExit: 3")
    assert len(store("exits").result_ids()) == 1  # first's result is kept: a rerun resumes from it

    ran.clear()
    with pytest.raises(SystemExit):
        engine.run(after(quits(first())), run_id="exits")
    assert ran == ["quits"]


def test_systemexit_in_an_async_task_stops_the_run_instead_of_hanging_it():
    code = """
import cascade_core as cs

store = cs.MemoryStateStore()

@cs.task
async def quits() -> int:
    raise SystemExit(4)

@cs.task
def after(value: int) -> int:
    return value

try:
    cs.run(after(quits()), state_backend=store, run_id="async-exit")
except SystemExit as exc:
    print(exc.code, store("async-exit").get_run_info()["status"])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout.strip()) == (0, "4 crashed"), result.stderr[-2000:]


FLOW_EXIT = """
import cascade_core as cs


@cs.task
def quits() -> int:
    raise SystemExit(3)


target = quits()
"""


def test_the_cli_exits_with_the_code_a_task_passed_to_systemexit(tmp_path: Path):
    (tmp_path / "flow.py").write_text(FLOW_EXIT)
    result = _cli(tmp_path, "run", "flow.py:target", "--state", "sqlite:///store.db", "--run-id", "cli-exit")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    shown = json.loads(_cli(tmp_path, "runs", "show", "cli-exit", "--state", "sqlite:///store.db", "--json").stdout)
    assert (shown["info"]["status"], shown["info"]["error"]) == ("crashed", "SystemExit: 3")
