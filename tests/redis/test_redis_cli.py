"""The ``cascade`` command against real redis-servers (started by conftest on free ports).

The same flow as on sqlite (run, cache, fail, resume, list, show, forget, cache clear), and a
password-protected server whose password must never appear in any output.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from cascade_test_cli import FLOW_HEAD, calls, cli

pytestmark = pytest.mark.redis

FLOW = (
    FLOW_HEAD
    + """
@cs.task(cache=True)
def load(i: int) -> int:
    note("load")
    return i * 10


@cs.task
def check(values: list, fail: bool) -> int:
    note("check")
    if fail:
        raise ValueError("values look wrong")
    return sum(values)


def pipeline():
    return check([load(i) for i in range(3)], fail)
"""
)


def resume_args(stderr: str) -> list[str]:
    (line,) = [line for line in stderr.splitlines() if line.startswith("to resume: ")]
    words = shlex.split(line.removeprefix("to resume: "))
    assert words[0] == "cascade"
    return words[1:]


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def test_run_cache_fail_resume_list_show_forget_and_clear(flow, redis_uri):
    store = ["--state", redis_uri, "--cache", redis_uri]
    first = cli(flow, "run", "flow.py:pipeline", *store, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["result"] == 30
    second = json.loads(cli(flow, "run", "flow.py:pipeline", *store, "--json").stdout)
    assert second["counts"]["cached"] == 3 and second["counts"]["executed"] == 1

    failed = cli(flow, "run", "flow.py:pipeline", *store, "--param", "fail=true", "--run-id", "broken")
    assert failed.returncode == 1
    assert "error: task 'flow.check' failed: ValueError: values look wrong" in failed.stderr
    fixed = [word.replace("fail=true", "fail=false") for word in resume_args(failed.stderr)]
    resumed = json.loads(cli(flow, *fixed, "--json").stdout)
    assert resumed["run_id"] == "broken" and resumed["counts"]["resumed"] == 3 and resumed["result"] == 30

    runs = json.loads(cli(flow, "runs", "list", "--state", redis_uri, "--json").stdout)
    assert {run["run_id"] for run in runs} == {first and json.loads(first.stdout)["run_id"], second["run_id"], "broken"}
    shown = json.loads(cli(flow, "runs", "show", "broken", "--state", redis_uri, "--json").stdout)
    statuses = Counter(row["status"] for row in shown["tasks"])
    assert statuses == {"cached": 3, "failed": 1, "done": 1}

    assert cli(flow, "runs", "forget", "broken", "--state", redis_uri).returncode == 0
    assert cli(flow, "runs", "show", "broken", "--state", redis_uri).returncode == 2

    assert cli(flow, "cache", "clear", "--cache", redis_uri, "--task", "flow.load").stdout.startswith("removed 3 ")
    before = calls(flow)
    cli(flow, "run", "flow.py:pipeline", *store)
    assert (calls(flow) - before)["load"] == 3


def test_the_password_never_appears_in_any_output(flow, auth_redis_server, closed_port):
    uri = auth_redis_server.uri
    PASSWORD = auth_redis_server.password
    assert PASSWORD and PASSWORD in uri
    auth_redis_server.flushall()
    env = {"CASCADE_STATE": uri, "CASCADE_CACHE": uri}
    explicit = ["--state", uri, "--cache", uri]
    outputs: list[subprocess.CompletedProcess] = []

    def run(*args: str, code: int, use_env: bool = False) -> subprocess.CompletedProcess:
        done = cli(flow, *args, env=env if use_env else None)
        outputs.append(done)
        assert done.returncode == code, done.stderr.replace(PASSWORD, "<leaked>")
        return done

    run("run", "flow.py:pipeline", *explicit, "--json", code=0)
    run("run", "flow.py:pipeline", *explicit, code=0)
    run("--debug", "run", "flow.py:pipeline", *explicit, code=0)

    # A failure with the URIs on the command line: the resume command shows them masked.
    failed = run("run", "flow.py:pipeline", *explicit, "-p", "fail=true", "--run-id", "secret-run", code=1)
    assert f"--state 'redis://:***@127.0.0.1:{auth_redis_server.port}/0'" in failed.stderr
    assert "note: secrets in --state and --cache are shown as ***" in failed.stderr
    run("run", "flow.py:pipeline", *explicit, "-p", "fail=true", "--run-id", "secret-run", "--json", code=1)

    # With the URIs in the environment, the resume command is runnable as printed.
    failed = run("run", "flow.py:pipeline", "-p", "fail=true", "--run-id", "env-run", code=1, use_env=True)
    fixed = [word.replace("fail=true", "fail=false") for word in resume_args(failed.stderr)]
    assert "--state" not in fixed
    resumed = run(*fixed, "--json", code=0, use_env=True)
    assert json.loads(resumed.stdout)["counts"]["resumed"] == 3

    run("runs", "list", "--state", uri, code=0)
    run("runs", "list", "--json", code=0, use_env=True)
    run("runs", "show", "secret-run", "--state", uri, code=0)
    run("runs", "show", "secret-run", "--json", code=0, use_env=True)
    run("runs", "show", "missing", "--state", uri, code=2)
    run("--debug", "runs", "show", "missing", "--state", uri, code=2)
    run("runs", "forget", "secret-run", "--state", uri, code=0)
    run("runs", "forget", "secret-run", "--state", uri, code=2)
    run("cache", "clear", "--cache", uri, "--task", "flow.load", code=0)
    run("cache", "clear", code=0, use_env=True)
    run("backends", "check", uri, code=0)

    # Errors: bad input next to the secret URI, a wrong option, an unreachable server.
    run("run", "flow.py:pipeline", *explicit, "-p", "nope=1", code=2)
    run("--debug", "run", "flow.py:pipeline", *explicit, "-p", "nope=1", code=2)
    run("run", "flow.py:pipeline", "--state", uri + "?bogus_option=1", code=2)
    run("run", "flow.py:pipeline", f"--state=redis://:{PASSWORD}@127.0.0.1:{closed_port}/0", code=1)
    run("--debug", "runs", "list", "--state", f"redis://:{PASSWORD}@127.0.0.1:{closed_port}/0", code=1)
    wrong = uri.replace(PASSWORD, PASSWORD + "-wrong")
    run("runs", "list", "--state", wrong, code=1)

    for done in outputs:
        assert PASSWORD not in done.stdout, done.args
        assert PASSWORD not in done.stderr, done.args
    assert any("Traceback" in done.stderr for done in outputs)  # --debug tracebacks were checked too
