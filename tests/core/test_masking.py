"""Credentials never shown: a URI that fails to parse (a password holding '/', '#' or '?') is
masked in every error and CLI line, and the text of a task's error is stored with its
credentials masked (_masking, cli/_secrets). Json stores: test_json_stores.py; signing and
CASCADE_SECRET_KEY: test_signing.py."""

from __future__ import annotations

import json
import subprocess
import traceback
from pathlib import Path

import pytest
from cascade_test_cli import STORE_VARIABLES, cli

import cascade_core as cs
from cascade_core._masking import describe, mask_credentials
from cascade_core.backends.sqlite import SqliteStateStore
from cascade_core.cli import main
from cascade_core.cli._secrets import collect_secrets, scrub

# -- passwords holding '/', '#' or '?' are never printed ---------------------------------------

PASSWORDS = ["p/ss#w?rd", "a?b", "x#y/z", "Qz7/Kp#Wm?Xv"]
TEMPLATES = ["redis://user:{pw}@db.internal:6379/0", "redis://:{pw}@db:6379/0?prefix=x", "memory://u:{pw}@name"]


def _leaks(text: str, password: str) -> list[str]:
    """The password, or any piece of it of 3+ characters between '/', '#' and '?', found in ``text``."""
    pieces = {password, *(p for p in password.replace("#", "/").replace("?", "/").split("/") if len(p) >= 3)}
    return [piece for piece in pieces if piece in text]


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("template", TEMPLATES)
def test_a_uri_that_fails_to_parse_never_shows_its_password(password, template, counter):
    @cs.task(cache=True, name="masking.square")
    def square(n: int) -> int:
        counter.hit("square")
        return n * n

    uri = template.format(pw=password)
    for call in (
        lambda: cs.BackendURI.parse(uri),
        lambda: cs.run(square(1), state_backend=uri),
        lambda: cs.run(square(1), cache_backend=uri),
    ):
        with pytest.raises(cs.InvalidURIError) as error:
            call()
        error_text = "".join(traceback.format_exception(error.value))
        shown = "".join([str(error.value), repr(error.value), error_text, str(error.value.key)])
        assert not _leaks(shown, password), shown
        assert "***" in str(error.value) and "\n" not in str(error.value)
    assert counter.total == 0


def test_a_fragment_is_refused_instead_of_cutting_a_password_short():
    # '#' used to end the URI silently: this one parsed as port 123 with no password at all.
    with pytest.raises(cs.InvalidURIError) as error:
        cs.BackendURI.parse("redis://:123#x@host/0")
    assert str(error.value).startswith("a '#' in backend URI 'redis://***@host/0': a backend URI has no fragment")
    with pytest.raises(cs.InvalidURIError, match="write %23"):
        cs.BackendURI.parse("sqlite:///runs#1.db")
    assert cs.BackendURI.parse("redis://:p%2Fss%23w%3Frd@db/0").password == "p/ss#w?rd"


def test_the_cli_scrubber_collects_passwords_that_do_not_parse():
    argv = ["run", "flow.py:x", "--state", "redis://u:p/ss#w?rd@db/0", "--cache=redis://:x#y/z@h"]
    secrets = collect_secrets(argv, {"CASCADE_STATE": "redis://:a?b@h/0"})
    assert {"p/ss#w?rd", "x#y/z", "a?b"} <= set(secrets)
    assert scrub("auth p/ss#w?rd and p%2Fss%23w%3Frd", secrets) == "auth *** and ***"


FLOW = """
import cascade_core as cs


@cs.task
def hello() -> str:
    return "hi"


def pipeline():
    return hello()
"""


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return cli(cwd, *args, env=env, unset=(*STORE_VARIABLES, "CASCADE_SECRET_KEY"))


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


@pytest.mark.parametrize("password", ["p/ss#w?rd", "a?b", "x#y/z"])
def test_the_cli_never_prints_a_password_that_does_not_parse(flow, password):
    uri = f"redis://user:{password}@db.internal:6379/0"
    for args, env in (
        (["run", "flow.py:pipeline", "--state", uri], None),
        (["--debug", "run", "flow.py:pipeline", "--cache", uri], None),
        (["run", "flow.py:pipeline", "--debug"], {"CASCADE_STATE": uri}),
        (["runs", "list", "--state", uri, "--json"], None),
    ):
        done = _cli(flow, *args, env=env)
        assert done.returncode == 2, done.stderr
        assert password not in done.stdout + done.stderr, done.stderr
        assert "error: " in done.stderr and "***" in done.stderr
        if "--debug" not in args:
            assert done.stderr.count("\n") == 1


# -- stored error text is masked; describe() never raises ---------------------------------------

UNREACHABLE = "cannot reach redis://u:hunter2@db:6379/0"


@cs.task(name="sec.connect")
def connect() -> None:
    raise ValueError(UNREACHABLE)


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


@cs.task(name="sec.unprintable")
def unprintable() -> None:
    raise Unprintable()


def test_mask_credentials_and_describe():
    assert mask_credentials(UNREACHABLE) == "cannot reach redis://***@db:6379/0"
    assert mask_credentials("at redis://u:p/ss#w?rd@db:6379/0 now") == "at redis://***@db:6379/0 now"
    assert mask_credentials("https://ghp_token@github.com/x.git") == "https://***@github.com/x.git"
    assert mask_credentials("x://h/0?password=pw&prefix=p, ?token=t") == "x://h/0?password=***&prefix=p, ?token=***"
    assert mask_credentials("no credentials: user@example.com, redis://h:1/0") == (
        "no credentials: user@example.com, redis://h:1/0"
    )
    assert describe(ValueError(UNREACHABLE + "\nsecond line")) == "ValueError: cannot reach redis://***@db:6379/0"
    assert describe(KeyError()) == "KeyError"
    assert describe(Unprintable()) == "Unprintable: <Unprintable whose message could not be read>"


def test_a_password_in_a_task_error_is_stored_masked(tmp_path):
    uri = f"sqlite:///{tmp_path}/s.db"
    with pytest.raises(cs.TaskFailed) as error:
        cs.run(connect(), state_backend=uri, run_id="leaky")
    assert "hunter2" not in str(error.value) and "redis://***@db:6379/0" in str(error.value)
    assert str(error.value.cause) == UNREACHABLE  # the original exception is the user's own, unchanged
    with SqliteStateStore(tmp_path / "s.db")("leaky") as backend:
        records = backend.get_task_records()
        info = backend.get_run_info()
    assert records and "hunter2" not in json.dumps(records) and "hunter2" not in json.dumps(info)
    assert [json.loads(r)["error"] for r in records.values()] == ["ValueError: cannot reach redis://***@db:6379/0"]

    outputs = []
    commands = (
        ["runs", "list", "--json"],
        ["runs", "list"],
        ["runs", "show", "leaky"],
        ["runs", "show", "leaky", "--json"],
    )
    for args in commands:
        done = _cli(tmp_path, *args, "--state", "sqlite:///s.db")
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert all("hunter2" not in out for out in outputs)
    assert all("redis://***@db:6379/0" in out for out in outputs[2:])
    listed = json.loads(outputs[0])
    assert listed[0]["run_id"] == "leaky" and "hunter2" not in listed[0].get("error", "")


LEAKY_FLOW = """
import cascade_core as cs


@cs.task
def connect():
    raise ValueError("cannot reach redis://u:hunter2@db:6379/0?token=t0k3n")


def pipeline():
    return connect()
"""


def test_cascade_run_masks_credentials_in_a_task_error(tmp_path):
    (tmp_path / "leaky.py").write_text(LEAKY_FLOW)
    for extra in ([], ["--json"], ["--debug"]):
        done = _cli(tmp_path, "run", "leaky.py:pipeline", "--state", "sqlite:///s.db", *extra)
        assert done.returncode == 1, done.stderr
        output = done.stdout + done.stderr
        assert "hunter2" not in output and "t0k3n" not in output
        assert "cannot reach redis://***@db:6379/0?token=***" in output


def test_a_task_exception_whose_str_raises_is_a_task_failure(tmp_path):
    with pytest.raises(cs.TaskFailed) as error:
        cs.run(unprintable(), state_backend=f"sqlite:///{tmp_path}/s.db", run_id="odd")
    assert isinstance(error.value.cause, Unprintable)
    assert "Unprintable: <Unprintable whose message could not be read>" in str(error.value)
    with SqliteStateStore(tmp_path / "s.db")("odd") as backend:
        (record,) = backend.get_task_records().values()
    assert json.loads(record)["error"] == "Unprintable: <Unprintable whose message could not be read>"


def test_cli_main_in_process_masks_stored_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cs.TaskFailed):
        cs.run(connect(), state_backend="sqlite:///s.db", run_id="r")
    assert main(["runs", "show", "r", "--state", "sqlite:///s.db"]) == 0
    out = capsys.readouterr()
    assert "hunter2" not in out.out + out.err and "redis://***@db:6379/0" in out.out
