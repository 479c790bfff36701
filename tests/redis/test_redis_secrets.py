"""Secrets never leak: a matrix of succeeding and failing runs with password-bearing URIs.

Everything a user can see is captured (return values, reprs, exception messages with their
whole traceback and causes, every log record at DEBUG, every event payload, stdout and
stderr, the CLI's output) and searched for the secrets, in plain and percent-encoded form.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from urllib.parse import quote

import pytest

import cascade_core as cs
from cascade_core._plugins.registry import registry
from cascade_core._uri import BackendURI

pytestmark = pytest.mark.redis

PASSWORD = "s3cret-Pa55word"  # the auth server's password (tests/redis_servers.py)
TOKEN = "t0ken-Val9e"


class EventRecorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @cs.hookimpl
    def cascade_run_started(self, run_id, tasks, state, cache):
        self.seen.append(repr((run_id, tasks, state, cache)))

    @cs.hookimpl
    def cascade_run_finished(self, run_id, status, counts, duration):
        self.seen.append(repr((run_id, status, counts)))

    @cs.hookimpl
    def cascade_task_failed(self, run_id, task, node_id, error):
        self.seen.append(repr((task, error, str(error))))

    @cs.hookimpl
    def cascade_task_finished(self, run_id, task, node_id, duration, cached):
        self.seen.append(repr((task, cached)))


@cs.task(cache=True)
def square(x):
    return x * x


@cs.task
def explode(x):
    raise RuntimeError(f"exploded on {x}")


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret)}


def _assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in _forms(secret):
            assert form not in text, f"secret leaked: {text[:400]}"


def _capture_error(action) -> str:
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - everything is inspected
        return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    return ""


@pytest.fixture
def auth_uri(auth_redis_server):
    with auth_redis_server.client() as client:
        client.flushall()
    return auth_redis_server.uri


def _cases(auth_uri: str, closed_port: int):
    host_port = auth_uri.split("@", 1)[1]
    wrong = auth_uri.replace(PASSWORD, PASSWORD + "-wrong")
    return {
        "success": lambda: cs.run(square(4), state_backend=auth_uri, cache_backend=auth_uri, run_id="ok"),
        "cache hit": lambda: cs.run(square(4), state_backend=auth_uri, cache_backend=auth_uri, run_id="ok2"),
        "task failure": lambda: cs.run(explode(square(2)), state_backend=auth_uri, cache_backend=auth_uri),
        "wrong password": lambda: cs.run(square(1), state_backend=wrong),
        "unreachable": lambda: cs.run(square(1), state_backend=f"redis://:{PASSWORD}@127.0.0.1:{closed_port}/0"),
        "bad option": lambda: cs.run(square(1), state_backend=auth_uri + "?prefx=x"),
        "secret option": lambda: cs.run(square(1), state_backend=f"redis://{host_port}?token={TOKEN}"),
        "bad port": lambda: cs.run(square(1), state_backend=f"redis://:{PASSWORD}@host:99999/0"),
        "tls on redis://": lambda: cs.run(square(1), state_backend=auth_uri + "?ssl_cert_reqs=none"),
        "at sign password": lambda: cs.run(square(1), state_backend=f"redis://:p@{PASSWORD}@127.0.0.1:{closed_port}"),
        "unknown scheme": lambda: cs.run(square(1), state_backend=f"nosuch://:{PASSWORD}@h"),
    }


def test_no_secret_in_anything_a_run_shows(auth_uri, closed_port, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    recorder = EventRecorder()
    captured: list[str] = []
    for name, case in _cases(auth_uri, closed_port).items():
        engine_case = case
        captured.append(f"--- {name}\n" + _capture_error(engine_case))
    # The same runs again through an observer, so event payloads are checked too.
    for uri in (auth_uri,):
        engine = cs.Engine(uri, uri, observers=[recorder])
        report = engine.execute([square(3), explode(1)], run_id="events")
        captured.append(repr(report) + str(report.error))
    factory = registry.state_factory(BackendURI.parse(auth_uri))
    cache = registry.cache_backend(BackendURI.parse(auth_uri))
    captured += [
        repr(factory),
        str(factory),
        repr(factory("r")),
        repr(cache),
        str(cache),
        repr(BackendURI.parse(auth_uri)),
        str(BackendURI.parse(auth_uri)),
    ]
    factory.close()
    cache.close()
    out, err = capsys.readouterr()
    everything = "\n".join(captured + recorder.seen + [out, err] + [r.getMessage() for r in caplog.records])
    _assert_clean(everything, PASSWORD, TOKEN)
    # The matrix really ran: each failing case produced an error that names its masked URI.
    assert everything.count("***") >= 5
    assert "exploded on 4" in everything and "unavailable" in everything


def _cli(args: list[str], cwd) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    return result.returncode, result.stdout + result.stderr


def test_no_secret_in_cli_output(auth_uri, closed_port, tmp_path):
    workflow = tmp_path / "flow.py"
    workflow.write_text(
        "import cascade_core as cs\n"
        "fail = cs.Param('fail', default=False, type=bool)\n"
        "@cs.task\n"
        "def step(x, fail):\n"
        "    if fail:\n"
        "        raise ValueError('asked to fail')\n"
        "    return x + 1\n"
        "target = step(1, fail)\n"
    )
    unreachable = f"redis://:{PASSWORD}@127.0.0.1:{closed_port}/0"
    runs = [
        ["run", "flow.py:target", "--state", auth_uri, "--cache", auth_uri, "--run-id", "cli-ok"],
        ["run", "flow.py:target", "--state", auth_uri, "--cache", auth_uri, "--param", "fail=true", "--json"],
        ["run", "flow.py:target", "--state", auth_uri, "--cache", auth_uri, "--param", "fail=true"],
        ["run", "flow.py:target", "--state", unreachable, "--cache", auth_uri],
        ["--debug", "run", "flow.py:target", "--state", unreachable, "--cache", auth_uri],
        ["runs", "list", "--state", auth_uri],
        ["runs", "list", "--state", auth_uri, "--json"],
        ["runs", "show", "cli-ok", "--state", auth_uri],
        ["runs", "show", "nope", "--state", auth_uri],
        ["backends", "check", auth_uri],
        ["backends", "check", unreachable],
        ["backends", "check", auth_uri + "?bogus=1"],
        ["cache", "clear", "--cache", auth_uri],
        ["runs", "forget", "cli-ok", "--state", auth_uri],
    ]
    outputs = []
    codes = []
    for args in runs:
        code, output = _cli(args, tmp_path)
        codes.append(code)
        outputs.append(output)
        _assert_clean(output, PASSWORD)
    assert codes[0] == 0 and codes[1] == 1 and codes[2] == 1 and codes[3] != 0
    assert "to resume" in outputs[2] and "***" in outputs[2]
