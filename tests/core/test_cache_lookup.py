"""Verified cache hits (_run/cache_lookup): an entry that no longer loads (its class was renamed)
is a miss, recomputed, overwritten and logged once, whether looked up up front or when its node
is ready; a refused hit makes its upstream's hit needed."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import pytest

import cascade_core as cs

REFUSED = "ignoring cache entry"


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
