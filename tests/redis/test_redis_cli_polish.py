"""CLI polish of issue 11 against real redis-servers: integer counts, ``cache clear`` naming the
(masked) store and refusing an empty ``--task``, JSON errors, and abandoned runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.redis

FLOW = """
import os
import cascade_core as cs


def note(name):
    with open(os.environ["FLOW_LOG"], "a") as log:
        log.write(name + "\\n")


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


def _core_helpers():
    """write_runs and check_abandoned, shared with tests/core/test_cli_polish.py."""
    path = Path(__file__).resolve().parents[1] / "core" / "test_cli_polish.py"
    spec = importlib.util.spec_from_file_location("cascade_test_cli_polish", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE")}
    full.update(FLOW_LOG=str(cwd / "calls.log"), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=60
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


def test_a_running_run_whose_lease_expired_is_shown_abandoned_on_redis(flow, redis_uri):
    helpers = _core_helpers()
    now = datetime.now(timezone.utc)
    helpers.write_runs(redis_uri, now)

    def ok(*args: str) -> subprocess.CompletedProcess:
        done = cli(flow, *args)
        assert done.returncode == 0, done.stderr
        return done

    helpers.check_abandoned(ok, redis_uri, now)


def test_a_sigkilled_driver_shows_abandoned_at_once_on_redis(tmp_path, redis_uri):
    helpers = _core_helpers()
    helpers.sigkill_a_driver(tmp_path, redis_uri)

    def ok(*args: str) -> subprocess.CompletedProcess:
        done = cli(tmp_path, *args)
        assert done.returncode == 0, done.stderr
        return done

    helpers.check_killed_driver(ok, redis_uri)
