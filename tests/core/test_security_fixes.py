"""Issue 11, security defects 1-4, on sqlite and through the CLI: a json store never unpickles,
passwords holding '/', '#' or '?' are never printed, CASCADE_SECRET_KEY is checked, and stored
error text has its credentials masked."""

from __future__ import annotations

import json
import logging
import os
import pickle
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core._errors import ConfigurationError
from cascade_core._masking import describe, mask_credentials
from cascade_core._store import codec
from cascade_core._store.codec import Codec, cache_storage_key, state_key
from cascade_core.backends.sqlite import SqliteCacheBackend, SqliteStateStore
from cascade_core.cli import main
from cascade_core.cli._secrets import collect_secrets, scrub


class _Planted:
    """Unpickling this creates ``path``: the proof that a planted pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _planted(storage_key: str, marker: Path) -> bytes:
    """A pickle payload with a valid checksum, as anyone who can write to the store can make."""
    return Codec("pickle").seal(storage_key, b"p", pickle.dumps(_Planted(marker)))


CALLS: list[str] = []


@cs.task(name="sec.make")
def make(n: int) -> list:
    CALLS.append("make")
    return [n, n + 1]


@cs.task(name="sec.total")
def total(values: list) -> int:
    CALLS.append("total")
    return sum(values)


@cs.task(cache=True, name="sec.square")
def square(n: int) -> int:
    CALLS.append("square")
    return n * n


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


# -- 1. the reader accepts only the serializers the backend allows ----------------------------


def test_a_json_codec_refuses_a_pickle_before_unpickling_it(tmp_path):
    marker = tmp_path / "ran"
    payload = _planted("state/r/n", marker)
    json_codec = Codec("json")
    for read in (
        lambda: json_codec.loads("state/r/n", payload),
        lambda: json_codec.open("state/r/n", payload),
        lambda: json_codec.deserialize("state/r/n", b"p", pickle.dumps(_Planted(marker))),
        lambda: json_codec.rebind("state/r/n", "state/r/m", payload),
    ):
        with pytest.raises(cs.IntegrityError) as error:
            read()
        assert str(error.value) == (
            "stored value at 'state/r/n' was written with pickle, but this backend is set to json and reads only "
            "json: refusing to read it (it may have been planted; delete it, or rerun to recompute it)"
        )
    opened, errors = json_codec.open_many("state/r/", {"n": payload, "ok": json_codec.dumps("state/r/ok", [1])})
    assert list(opened) == ["ok"] and [e.key for e in errors] == ["state/r/n"]
    assert not marker.exists()
    # A pickle codec still reads json payloads; no codec reads an unknown serializer byte.
    assert Codec("pickle").loads("k", Codec("json").dumps("k", {"a": 1})) == {"a": 1}
    assert Codec("json").accepts(b"j") and not Codec("json").accepts(b"p") and Codec("pickle").accepts(b"p")
    with pytest.raises(cs.IntegrityError, match="unknown serializer"):
        Codec("pickle").deserialize("k", b"x", b"{}")


def test_a_planted_pickle_in_a_json_sqlite_state_is_refused_on_resume(tmp_path, json_state):
    marker = tmp_path / "ran"
    store, factory = json_state
    assert cs.run(total(make(3)), state_backend=factory, run_id="r") == 7
    with store("r") as backend:
        ids = sorted(backend.result_ids())
        assert len(ids) == 2
        backend.put_results({node_id: _planted(state_key("r", node_id), marker) for node_id in ids})
    CALLS.clear()
    with pytest.raises(cs.IntegrityError) as error:
        cs.run(total(make(3)), state_backend=factory, run_id="r")
    assert "was written with pickle, but this backend is set to json" in str(error.value)
    assert "\n" not in str(error.value) and error.value.key.startswith("state/r/")
    assert not marker.exists() and CALLS == []
    store.close()


def test_a_planted_pickle_in_a_json_sqlite_cache_is_a_miss(tmp_path, caplog):
    marker = tmp_path / "ran"
    cache = SqliteCacheBackend(tmp_path / "cache.db")
    cache.serializer = "json"  # type: ignore[misc]
    assert cs.run([square(2), square(3)], cache_backend=cache) == [4, 9]
    with sqlite3.connect(tmp_path / "cache.db") as conn:
        keys = [key for (key,) in conn.execute("SELECT key FROM cache")]
    assert len(keys) == 2
    cache.set_many({key: _planted(cache_storage_key(key), marker) for key in keys})
    CALLS.clear()
    caplog.set_level(logging.WARNING, logger="cascade")
    assert cs.run([square(2), square(3)], cache_backend=cache) == [4, 9]
    assert CALLS == ["square", "square"]  # recomputed
    assert not marker.exists()
    refused = [r.getMessage() for r in caplog.records if "was written with pickle" in r.getMessage()]
    assert refused and all("set to json" in message for message in refused)
    # The entries were overwritten with json payloads.
    stored = cache.get_many(keys)
    assert {payload[3:4] for payload in stored.values()} == {b"j"}
    cache.close()


# -- 2. passwords holding '/', '#' or '?' are never printed ---------------------------------------

PASSWORDS = ["p/ss#w?rd", "a?b", "x#y/z", "Qz7/Kp#Wm?Xv"]
TEMPLATES = ["redis://user:{pw}@db.internal:6379/0", "redis://:{pw}@db:6379/0?prefix=x", "memory://u:{pw}@name"]


def _leaks(text: str, password: str) -> list[str]:
    """The password, or any piece of it of 3+ characters between '/', '#' and '?', found in ``text``."""
    pieces = {password, *(p for p in password.replace("#", "/").replace("?", "/").split("/") if len(p) >= 3)}
    return [piece for piece in pieces if piece in text]


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("template", TEMPLATES)
def test_a_uri_that_fails_to_parse_never_shows_its_password(password, template):
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
    assert CALLS == []


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
    clean = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE", "CASCADE_SECRET_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


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


# -- 3. CASCADE_SECRET_KEY ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   ", "\t\n", ",", " , "])
def test_a_blank_secret_key_is_refused(monkeypatch, value):
    monkeypatch.setenv("CASCADE_SECRET_KEY", value)
    with pytest.raises(ConfigurationError) as error:
        cs.run(total(make(1)))
    assert isinstance(error.value, cs.CascadeError) and CALLS == []
    assert str(error.value) == (
        "CASCADE_SECRET_KEY is set but holds no key (it is empty or blank): set it to a long random secret, "
        "or unset it to store payloads unsigned"
    )


def test_a_short_secret_key_warns_once_and_signs(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(codec, "_warned_short", set())
    monkeypatch.setenv("CASCADE_SECRET_KEY", "k")
    caplog.set_level(logging.WARNING, logger="cascade.security")
    uri = f"sqlite:///{tmp_path}/s.db"
    cs.run(total(make(1)), state_backend=uri, run_id="a")
    cs.run(total(make(1)), state_backend=uri, run_id="b")
    warnings = [r.getMessage() for r in caplog.records if r.name == "cascade.security"]
    assert len(warnings) == 1
    assert warnings[0].startswith("CASCADE_SECRET_KEY holds a key of 1 bytes (id ") and "at least 16" in warnings[0]
    with SqliteStateStore(tmp_path / "s.db")("a") as backend:
        payloads = backend.get_results(backend.result_ids())
    assert payloads and all(payload[4:5] == b"h" for payload in payloads.values())  # signed

    caplog.clear()
    monkeypatch.setenv("CASCADE_SECRET_KEY", "a-long-enough-secret-key, k")  # rotation: the old short key is known
    cs.run(total(make(1)), state_backend=uri, run_id="c")
    assert not [r for r in caplog.records if r.name == "cascade.security"]


def test_an_unset_secret_key_means_unsigned(monkeypatch, tmp_path):
    monkeypatch.delenv("CASCADE_SECRET_KEY", raising=False)
    assert codec.keys_from_env() == []
    assert codec.keys_from_env({"CASCADE_SECRET_KEY": "one two,three"}) == [b"one", b"two", b"three"]


def test_the_cli_refuses_a_blank_secret_key_in_one_line(flow):
    done = _cli(flow, "run", "flow.py:pipeline", "--state", "sqlite:///s.db", env={"CASCADE_SECRET_KEY": "  "})
    assert done.returncode == 2
    assert done.stderr == (
        "error: CASCADE_SECRET_KEY is set but holds no key (it is empty or blank): set it to a long random secret, "
        "or unset it to store payloads unsigned\n"
    )


# -- 4. stored error text is masked; describe() never raises ---------------------------------------

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
