"""The conformance kit catches deliberately broken plugins (tests/core/kit_broken_plugins.py), and
each failure says which rule was broken and where the docs state it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
KIT = [
    sys.executable,
    "-m",
    "pytest",
    "--pyargs",
    "cascade_core.testing",
    "-q",
    "-W",
    "error",
    "-p",
    "no:cacheprovider",
]


def run_kit(uri: str, tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    command = [*KIT, "-p", "kit_broken_plugins", "--cascade-uri", uri, *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]  # tests failed, none errored
    return result.stdout


def failed(output: str) -> list[str]:
    return sorted(line.split("::")[-1].split(" ")[0] for line in output.splitlines() if line.startswith("FAILED "))


def test_an_executor_that_never_reports_fails_every_test_on_time(tmp_path):
    output = run_kit("silent://", tmp_path, "--cascade-timeout", "2", "-k", "submit_reports or chain or fan_out")
    assert failed(output) == [
        "test_a_chain_runs_in_dependency_order",
        "test_a_fan_out_of_1000",
        "test_submit_reports_each_call_once",
    ], output[-3000:]
    for name in ("test_a_chain_runs_in_dependency_order", "test_submit_reports_each_call_once"):
        assert f"{name} did not finish within 2 s (--cascade-timeout raises the limit)" in output
    assert "an executor calls done(outcome) exactly once per call" in output


def test_an_executor_that_ignores_cancel_fails_the_cancellation_test(tmp_path):
    output = run_kit("deaf://", tmp_path, "-k", "cancelled_arun")
    assert failed(output) == ["test_a_cancelled_arun_stops_the_run"], output[-3000:]
    assert "calls started after arun() was cancelled" in output
    assert "calls that have not started when the run is cancelled must not start" in output
    assert "(see docs/executors.md#cancellation)" in output


def test_an_executor_that_loses_outcomes_that_do_not_travel_fails(tmp_path):
    output = run_kit("careless-pool://", tmp_path, "-k", "cannot_travel or dead_worker or submit_reports")
    assert failed(output) == ["test_a_dead_worker_fails_its_call", "test_an_outcome_that_cannot_travel_fails_its_call"]
    assert "never reported the call that produced an exception that cannot be pickled" in output
    assert "the executor never reported the call whose worker died; the engine gave up waiting" in output


def test_an_executor_that_reports_twice_fails(tmp_path):
    output = run_kit("twice://", tmp_path, "-k", "submit_reports")
    assert failed(output) == ["test_submit_reports_each_call_once"]
    assert "done() was called 2 times for one call: call done(outcome) exactly once" in output


@pytest.mark.parametrize(
    ("scheme", "test", "message"),
    [
        (
            "stale-blobs",
            "test_put_of_an_existing_blob_refreshes_its_time",
            "a put of an existing blob refreshes its modification time",
        ),
        ("torn-blobs", "test_readers_never_see_part_of_a_blob", "no reader ever sees part of a blob under its id"),
        ("fragile-blobs", "test_close_twice_is_harmless", "a second close() raised RuntimeError: already closed"),
    ],
)
def test_a_broken_blob_store_fails_the_rule_it_breaks(scheme, test, message, tmp_path):
    output = run_kit(f"{scheme}://{tmp_path / 'blobs'}", tmp_path)
    assert failed(output) == [test], output[-3000:]
    assert message in output and "(see docs/blobs.md#" in output


@pytest.mark.parametrize(
    ("uri", "tests", "messages"),
    [
        (
            "text-state://",
            ["test_large_payload", "test_round_trip_varied_payloads"],
            [
                "get_results returned payloads other than put_results stored (with other values for 'binary', "
                "'not-utf8'): every value a backend receives or returns is opaque bytes, returned exactly as stored "
                "(see docs/backends.md#backends-the-contracts)",
                "get_results of a 5 MiB payload returned 10485760 bytes other than the 5242880 bytes put_results "
                "stored",
            ],
        ),
        (
            "keeping-cache://",
            [
                "test_delete_many_counts_what_existed",
                "test_expired_entries_are_gone_after_delete_and_clear",
                "test_many_keys_in_one_batch",
            ],
            [
                "after delete_many of a and b, get_many returned with extra 'a', 'b': delete_many(keys) -> int: "
                "delete; return how many existed (a missing key counts 0, a repeated key once) "
                "(see docs/backends.md#cachebackend-shared-by-all-runs)",
                "after delete_many, get_many returned with extra 'd/live': an entry past its TTL is never returned, "
                "and after delete_many or clear of its key it is gone for good",
            ],
        ),
        (
            "greedy-leases://",
            [
                "test_acquire_is_exclusive_and_reentrant[cache]",
                "test_leases_expire_and_renewal_keeps_them[cache]",
                "test_odd_names[cache]",
                "test_one_winner_among_concurrent_claimants[cache]",
            ],
            [
                "acquire_leases([a, c], 'owner-2') with a held by owner-1 returned with extra 'a': a lease is an "
                "exclusive claim on a name, held by an owner token for ttl seconds unless renewed "
                "(see docs/backends.md#leases-no-duplicate-work)",
                "8 concurrent claimants of one free name, 8 won: a lease is an exclusive claim",
            ],
        ),
    ],
)
def test_a_broken_backend_fails_the_rules_it_breaks(uri, tests, messages, tmp_path):
    output = run_kit(uri, tmp_path)
    assert failed(output) == tests, output[-3000:]
    for message in messages:
        assert message in output, output[-3000:]
    # Every failure carries a message naming the rule and its section, not a bare `assert a == b`.
    explained = [line for line in output.splitlines() if line.startswith("E       AssertionError: ")]
    assert len(explained) == len(tests), output[-3000:]
    assert all(line.endswith(")") and "(see docs/backends.md#" in line for line in explained), explained
