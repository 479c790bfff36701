"""What the CLI prints about a real redis-server: integer counts and function params in --json,
``cache clear`` naming the (masked) store and refusing an empty ``--task``, JSON errors when the
server is unreachable. Abandoned runs on Redis: tests/core/test_cli_runs_abandoned.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cascade_test_cli import FLOW_HEAD, cli

pytestmark = pytest.mark.redis

FLOW = (
    FLOW_HEAD
    + """
@cs.task(cache=True)
def load(i: int) -> int:
    note("load")
    return i * 10


@cs.task
def total(values: list) -> int:
    return sum(values)


def pipeline(n: int = 3):
    return total([load(i) for i in range(n)])
"""
)


def loads(cwd: Path) -> int:
    log = cwd / "calls.log"
    return log.read_text().split().count("load") if log.exists() else 0


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def test_counts_are_integers_and_function_params_fill_on_redis(flow, redis_uri):
    store = ["--state", redis_uri, "--cache", redis_uri]
    done = cli(flow, "run", "flow.py:pipeline", *store, "--param", "n=4", "--run-id", "7", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == 60 and loads(flow) == 4
    (listed,) = json.loads(cli(flow, "runs", "list", "--state", redis_uri, "--json").stdout)
    assert listed["run_id"] == "7" and listed["tasks"] == 5 and listed["results"] == 5
    assert listed["count_executed"] == 5 and listed["count_failed"] == 0
    info = json.loads(cli(flow, "runs", "show", "7", "--state", redis_uri, "--json").stdout)["info"]
    assert info["tasks"] == 5 and info["count_total"] == 5


def test_cache_clear_names_the_masked_store_and_refuses_an_empty_task(flow, auth_redis_server):
    auth_redis_server.flushall()
    uri = auth_redis_server.uri
    password = auth_redis_server.password
    assert password and password in uri
    store = ["--state", uri, "--cache", uri]
    assert cli(flow, "run", "flow.py:pipeline", *store).returncode == 0
    assert loads(flow) == 3

    for task in ("", "  "):
        done = cli(flow, "cache", "clear", "--cache", uri, "--task", task)
        assert done.returncode == 2 and done.stdout == "" and done.stderr.startswith("error: --task is empty: ")
    done = cli(flow, "run", "flow.py:pipeline", *store, "--json")
    assert json.loads(done.stdout)["counts"]["cached"] == 3 and loads(flow) == 3  # nothing was deleted

    masked = f"redis://:***@127.0.0.1:{auth_redis_server.port}/0"
    done = cli(flow, "cache", "clear", "--cache", uri, "--task", "flow.load")
    assert done.stdout == f"removed 3 cache entries of task flow.load from {masked}\n"
    done = cli(flow, "cache", "clear", env={"CASCADE_CACHE": uri})
    assert done.stdout == f"removed 0 cache entries from {masked}\n"
    assert password not in done.stdout + done.stderr


def test_json_errors_on_an_unreachable_server(flow, closed_port):
    done = cli(flow, "runs", "list", "--state", f"redis://127.0.0.1:{closed_port}/0?socket_timeout=1", "--json")
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["error_type"] == "BackendUnavailableError" and error["exit_code"] == 1
    assert done.stderr == f"error: {error['error']}\n"
    # A check that fails is a report (exit 1), still JSON.
    done = cli(flow, "backends", "check", f"redis://127.0.0.1:{closed_port}/0?socket_timeout=1", "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["ok"] is False
