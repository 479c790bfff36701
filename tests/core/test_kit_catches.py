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
