"""Issue 11: every number is finite and in range, in the API, in URI options and on the command line.

Each refusal is one line from a CascadeError subclass that names the option, raised before any
task runs; sqlite and memory caches refuse a non-finite TTL given to set_many directly.
"""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys

import pytest

import cascade_core as cs
from cascade_core._uri import (
    MAX_SECONDS,
    MAX_TIMEOUT,
    checked_ttl,
    non_negative_int,
    positive_float,
    positive_int,
    size_bytes,
    timeout_seconds,
)
from cascade_core.backends.memory import MemoryCacheBackend
from cascade_core.backends.sqlite import SqliteCacheBackend
from cascade_core.cli import main

NON_FINITE = [math.nan, math.inf, -math.inf]
CALLS: list[int] = []


@cs.task(cache=True, name="finite.double")
def double(n: int) -> int:
    CALLS.append(n)
    return 2 * n


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def _define(**options):
    return cs.task(**options)(lambda: 1)


# -- the API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [*NON_FINITE, 0, -1, MAX_SECONDS + 1, 1e300, 10**400, True, "60"])
def test_cache_ttl_is_finite_and_in_range(value):
    with pytest.raises(cs.DefinitionError) as error:
        _define(cache=True, cache_ttl=value)
    message = str(error.value)
    assert "cache_ttl must be a number of seconds greater than 0 and at most 315360000 (10 years)" in message
    assert "\n" not in message


def test_cache_ttl_bounds_that_are_accepted():
    assert _define(cache=True, cache_ttl=MAX_SECONDS).cache_ttl == MAX_SECONDS
    assert _define(cache=True, cache_ttl=0.001).cache_ttl == 0.001


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("retry_delay", math.nan, "retry_delay must be a number from 0 to 86400 seconds (a day), got nan"),
        ("retry_delay", math.inf, "retry_delay must be a number from 0 to 86400 seconds (a day), got inf"),
        ("retry_delay", -1, "retry_delay must be a number from 0 to 86400"),
        ("retry_delay", 1e10, "retry_delay must be a number from 0 to 86400"),
        ("retry_backoff", math.nan, "retry_backoff must be a number from 0 to 100, got nan"),
        ("retry_backoff", -math.inf, "retry_backoff must be a number from 0 to 100, got -inf"),
        ("retry_backoff", 101, "retry_backoff must be a number from 0 to 100, got 101"),
    ],
)
def test_retry_numbers_are_finite_and_in_range(option, value, words):
    with pytest.raises(cs.DefinitionError) as error:
        _define(retries=2, **{option: value})
    assert words in str(error.value) and "\n" not in str(error.value)


def test_the_wait_between_retries_never_overflows():
    assert _define(retries=3, retry_delay=1, retry_backoff=3).retry_wait(2) == 9.0
    assert _define(retries=5000, retry_delay=86400, retry_backoff=100).retry_wait(4000) == 86400.0
    assert _define(retries=5000, retry_delay=0, retry_backoff=100).retry_wait(4000) == 0.0


# -- URI options ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "0", "-1", "1e300", "315360001"])
def test_seconds_options_refuse_non_finite_and_huge_values(raw):
    with pytest.raises(ValueError, match="expected a number greater than 0 and at most 315360000"):
        positive_float(raw)


def test_converter_ranges():
    assert positive_float("315360000") == MAX_SECONDS and positive_float("0.5") == 0.5
    assert timeout_seconds("86400") == MAX_TIMEOUT
    for raw in ("nan", "inf", "86401", "0"):
        with pytest.raises(ValueError, match="at most 86400"):
            timeout_seconds(raw)
    assert non_negative_int(str(2**63 - 1)) == 2**63 - 1 and positive_int("1") == 1
    for raw in (str(2**63), "9" * 5000, "1e3", "²", "-1"):
        with pytest.raises(ValueError, match="expected a whole number from 0 to 9223372036854775807"):
            non_negative_int(raw)
    for raw in ("99999999999999999999G", "0", "nan"):
        with pytest.raises(ValueError, match="expected a size"):
            size_bytes(raw)


@pytest.mark.parametrize(
    ("uri", "option"),
    [
        ("sqlite:///c.db?ttl=nan", "ttl"),
        ("sqlite:///c.db?ttl=inf", "ttl"),
        ("sqlite:///c.db?ttl=1e300", "ttl"),
        ("sqlite:///c.db?timeout=nan", "timeout"),
        ("sqlite:///c.db?timeout=1e9", "timeout"),  # sqlite's busy timeout would wrap around to 0
        ("memory://?ttl=-inf", "ttl"),
        ("memory://?ttl=1e300", "ttl"),
        ("memory://?max_runs=99999999999999999999", "max_runs"),
    ],
)
def test_out_of_range_options_are_refused_before_anything_runs(tmp_path, monkeypatch, uri, option):
    monkeypatch.chdir(tmp_path)
    for kind in ("cache_backend", "state_backend"):
        with pytest.raises(cs.InvalidURIError) as error:
            cs.run(double(2), **{kind: uri})
        assert error.value.key == option and f"for option {option!r}" in str(error.value)
        assert "\n" not in str(error.value)
    assert CALLS == []


# -- sqlite and memory refuse a non-finite TTL given to set_many ------------------------------


@pytest.mark.parametrize("ttl", [*NON_FINITE, MAX_SECONDS * 2.0, "60", None])
def test_set_many_refuses_a_non_finite_ttl(tmp_path, ttl):
    caches = [SqliteCacheBackend(tmp_path / "c.db"), MemoryCacheBackend()]
    for cache in caches:
        if ttl is None:  # the default: never expires
            cache.set_many({"k": b"v"}, ttl)
            assert cache.get_many(["k"]) == {"k": b"v"}
        else:
            with pytest.raises(cs.DefinitionError, match=r"a cache TTL must be a number of seconds, at most 315360000"):
                cache.set_many({"k": b"v"}, ttl)
            assert cache.get_many(["k"]) == {}
        cache.close()
    with sqlite3.connect(tmp_path / "c.db") as conn:
        assert conn.execute("SELECT count(*) FROM cache WHERE expires_at IS NOT NULL").fetchone() == (0,)


def test_checked_ttl():
    assert checked_ttl(60) == 60.0 and checked_ttl(0) == 0.0
    assert checked_ttl(-(10**400)) == -1.0  # expired on arrival, like every ttl <= 0
    for bad in (math.nan, math.inf, True, "1"):
        with pytest.raises(cs.DefinitionError):
            checked_ttl(bad)


def test_a_cached_task_with_the_largest_ttl_is_stored_with_a_finite_expiry(tmp_path):
    task = cs.task(cache=True, cache_ttl=MAX_SECONDS, name="finite.long")(lambda n: n + 1)
    cache = SqliteCacheBackend(tmp_path / "c.db")
    assert cs.run(task(1), cache_backend=cache) == 2
    with sqlite3.connect(tmp_path / "c.db") as conn:
        (expires,) = conn.execute("SELECT expires_at FROM cache").fetchone()
    assert expires is not None and math.isfinite(expires)
    cache.close()


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["nan", "inf", "0", "-3", "1e3", "10001", "9" * 400])
def test_workers_flag_is_a_whole_number_in_range(capsys, workers):
    assert main(["run", "flow.py:pipeline", "--workers", workers]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: argument --workers: must be a whole number >= 1 and at most 10000, got {workers!r}")
    assert err.count("\n") == 1


FLOW = """
import cascade_core as cs


@cs.task(cache=True)
def hello() -> str:
    print("RAN")
    return "hi"


def pipeline():
    return hello()
"""


def test_cli_refuses_out_of_range_uri_options_in_one_line(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW)
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE")}
    done = subprocess.run(
        [sys.executable, "-m", "cascade_core", "run", "flow.py:pipeline", "--cache", "sqlite:///c.db?ttl=nan"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "RAN" not in done.stdout
    assert done.stderr == (
        "error: invalid value 'nan' for option 'ttl' in sqlite:///c.db?ttl=nan: "
        "expected a number greater than 0 and at most 315360000 (10 years)\n"
    )
