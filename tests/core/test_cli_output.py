"""What the CLI prints: counts as integers in --json, errors as a JSON object under --json,
singular and plural, counts in the engine's order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cascade_test_cli import STATE, STORE, cli, ok, write_flow

from cascade_core import BackendURI
from cascade_core._plugins.registry import registry
from cascade_core.cli._output import describe_counts, plural


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    return write_flow(tmp_path)


def test_runs_list_and_show_print_counts_as_integers_like_run(flow):
    report = json.loads(ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "123", "--json").stdout)
    assert report["counts"]["total"] == 3 and report["counts"]["executed"] == 3

    (listed,) = json.loads(ok(flow, "runs", "list", "--state", STATE, "--json").stdout)
    assert listed["run_id"] == "123"  # an id made of digits stays a string
    assert listed["tasks"] == 3 and listed["results"] == 3
    assert {key[6:]: value for key, value in listed.items() if key.startswith("count_")} == report["counts"]
    assert listed["status"] == "succeeded" and listed["target"] == "flow.check"

    info = json.loads(ok(flow, "runs", "show", "123", "--state", STATE, "--json").stdout)["info"]
    assert info["tasks"] == 3 and info["count_executed"] == 3 and info["count_failed"] == 0
    assert all(type(value) is int for key, value in info.items() if key.startswith("count_"))


@pytest.mark.parametrize(
    ("args", "error_type", "starts"),
    [
        (["backends", "check", "nosuch://", "--json"], "BackendNotFoundError", "unknown backend scheme 'nosuch'"),
        (["backends", "check", "::bad", "--json"], "InvalidURIError", "malformed backend URI '::bad'"),
        (["backends", "check", "--json"], "UsageError", "the following arguments are required: uri"),
        (["runs", "list", "--state", "nosuch://x", "--json"], "BackendNotFoundError", "unknown backend scheme"),
        (["runs", "show", "nope", "--state", STATE, "--json"], "UsageError", "no run 'nope' in sqlite:///runs.db"),
        (["run", "flow.py:pipeline", *STORE, "-p", "fail=maybe", "--json"], "ParamError", "param 'fail' expects"),
    ],
)
def test_json_errors_are_a_json_object_on_stdout_with_the_usual_exit_code(flow, args, error_type, starts):
    done = cli(flow, *args)
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert set(error) == {"error", "error_type", "exit_code"}
    assert error["error_type"] == error_type and error["exit_code"] == 2
    assert error["error"].startswith(starts) and "\n" not in error["error"]
    assert done.stderr == f"error: {error['error']}\n"  # the same line for people, on stderr


def test_one_task_is_singular_in_progress_summary_and_show(flow):
    done = ok(flow, "run", "flow.py:single", *STORE, "--run-id", "one")
    assert "run one: 1 task\n" in done.stderr
    assert done.stdout.startswith("run one succeeded in ") and ": 1 task (1 executed)\n" in done.stdout

    done = cli(flow, "run", "flow.py:failing", *STORE, "--run-id", "bad")
    assert done.returncode == 1
    assert ": 1 task (1 failed)\n" in done.stdout
    header = ok(flow, "runs", "show", "bad", "--state", STATE).stdout.splitlines()[0]
    assert header.startswith("run bad: failed, target flow.explode, 1 task (1 failed), created ")

    header = ok(flow, "runs", "show", "one", "--state", STATE).stdout.splitlines()[0]
    assert header.startswith("run one: succeeded, target flow.load, 1 task (1 executed), created ")
    done = ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "three")
    assert ": 3 tasks (3 executed)\n" in done.stdout


def test_counts_render_generically_so_by_other_drivers_reads_well(flow):
    assert plural(1, "task") == "1 task" and plural(0, "task") == "0 tasks" and plural("?", "task") == "? tasks"
    assert plural(1, "cache entry", "cache entries") == "1 cache entry"
    counts = {"total": 5, "executed": 1, "cached": 0, "resumed": 0, "by_other_drivers": 4, "failed": 0}
    assert describe_counts(counts) == "1 executed, 4 by other drivers"
    assert describe_counts({"total": 0}) == ""

    # A run whose info holds the count (as the engine writes it) shows it in `runs show`,
    # in the engine's order even though sqlite returns the keys sorted.
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "shared")
    factory = registry.state_factory(BackendURI.parse(f"sqlite:///{flow / 'runs.db'}"))
    try:
        backend = factory("shared")
        backend.set_run_info({"count_executed": "1", "count_by_other_drivers": "2"})
        backend.close()
    finally:
        factory.close()
    header = ok(flow, "runs", "show", "shared", "--state", STATE).stdout.splitlines()[0]
    assert "3 tasks (1 executed, 2 by other drivers), created " in header
