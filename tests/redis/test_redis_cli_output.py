"""What the CLI prints about a real redis-server: integer counts and function params in --json,
``cache clear`` naming the (masked) store and refusing an empty ``--task``, JSON errors when the
server is unreachable. Abandoned runs on Redis: tests/core/test_cli_runs_abandoned.py."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from cascade_test_cli import cli

from cascade_core._store.codec import Codec, state_key

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


class _Planted:
    """Unpickling this creates ``path``: the proof that a planted pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _planted(storage_key: str, marker: Path) -> bytes:
    """A pickle payload with a valid checksum: what anyone who can write to redis can make."""
    return Codec("pickle").seal(storage_key, b"p", pickle.dumps(_Planted(marker)))


def _json(uri: str) -> str:
    return uri + "?serializer=json"


PLANTED_FLOW = """
import cascade_core as cs


@cs.task
def make() -> list:
    return [1, 2]


@cs.task
def total(values: list) -> int:
    return sum(values)


def pipeline():
    return total(make())
"""


def test_the_cli_refuses_a_planted_pickle_in_one_line(redis_uri, redis_server, tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "flow.py").write_text(PLANTED_FLOW)
    args = ["run", "flow.py:pipeline", "--state", _json(redis_uri), "--cache", "memory://", "--run-id", "cli"]
    unset = ("CASCADE_STATE", "CASCADE_CACHE", "CASCADE_SECRET_KEY")
    first = cli(tmp_path, *args, unset=unset)
    assert first.returncode == 0, first.stderr
    with redis_server.client() as client:
        for node_id in client.hkeys("cascade:run:{cli}:results"):
            planted = _planted(state_key("cli", node_id.decode()), marker)
            client.hset("cascade:run:{cli}:results", node_id, planted)
    done = cli(tmp_path, *args, unset=unset)
    assert done.returncode == 1 and not marker.exists()  # a stored payload refused (docs/cli.md)
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith("error: stored value at 'state/cli/")
    assert "was written with pickle, but this backend is set to json" in error_lines[0]
    assert "Traceback" not in done.stderr
