"""Signed payloads (CASCADE_SECRET_KEY, ``secret_keys=``): a blank key is refused, a short one warns;
tampered, swapped and unsigned entries are refused before anything is unpickled; an old key
still reads after rotation; without a key, an untrusted store warns once. On memory://,
sqlite:// and a real redis-server (any_state)."""

from __future__ import annotations

import logging
import pickle

import pytest
from cascade_test_cli import cli, write_flow

import cascade_core as cs
from cascade_core._errors import ConfigurationError
from cascade_core._store import codec
from cascade_core.backends.sqlite import SqliteStateStore

CALLS: list[str] = []
EXPLODED: list[str] = []


def _explode():
    EXPLODED.append("unpickled")
    return "evil"


class Evil:
    def __reduce__(self):
        return (_explode, ())


@cs.task(cache=True, name="signing.value")
def value(x):
    CALLS.append("value")
    return x * 2


@cs.task(name="signing.plus")
def plus(x):
    CALLS.append("plus")
    return x + 1


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()
    EXPLODED.clear()


HELLO = """
import cascade_core as cs


@cs.task
def hello() -> str:
    return "hi"


def pipeline():
    return hello()
"""


def test_tampered_cache_entry_is_never_unpickled_and_is_recomputed(any_state, caplog):
    engine = cs.Engine(any_state.uri, any_state.uri, secret_keys=[b"key-one"])
    assert engine.run(value(21)) == 42
    cache = any_state.cache()
    ((key, payload),) = list(cache.iter_entries())
    body_start = len(payload) - len(pickle.dumps(42, protocol=pickle.HIGHEST_PROTOCOL))
    cache.set_many({key: payload[:body_start] + pickle.dumps(Evil())})  # the signature no longer matches
    caplog.set_level(logging.WARNING, logger="cascade")
    assert engine.run(value(21)) == 42
    assert EXPLODED == []
    assert any("fails its signature" in record.getMessage() for record in caplog.records)
    assert cache.get_many([key]) == {key: payload}  # recomputed and overwritten with a valid entry


def test_swapped_and_unsigned_state_rows_are_refused(any_state):
    signed = cs.Engine(any_state.uri, secret_keys=[b"key-one"])
    first, second = value(1), value(2)
    report = signed.execute(plus(first), run_id="swap")
    assert report.status == "succeeded"
    backend = any_state.state("swap")
    results = backend.get_results(backend.result_ids())
    ids = sorted(results)
    # Valid payloads under each other's keys (both ways: the rerun reads only its target's).
    backend.put_results({ids[0]: results[ids[1]], ids[1]: results[ids[0]]})
    with pytest.raises(cs.IntegrityError) as error:
        signed.run(plus(first), run_id="swap")
    assert "swap" in error.value.key and "\n" not in str(error.value)

    cs.Engine(any_state.uri, secret_keys=[]).run(second, run_id="unsigned")
    with pytest.raises(cs.IntegrityError, match="unsigned"):
        signed.run(plus(second), run_id="unsigned")


def test_rotation_reads_old_payloads(any_state):
    old = cs.Engine(any_state.uri, secret_keys=[b"old"])
    old.run(value(5), run_id="rotate")
    rotated = cs.Engine(any_state.uri, secret_keys=[b"new", b"old"])
    assert rotated.run(plus(value(5)), run_id="rotate") == 11


def test_unsigned_pickles_warn_once_from_an_untrusted_store_and_never_from_a_trusted_one(
    any_state, caplog, monkeypatch
):
    monkeypatch.setattr(codec, "_warned_unsigned", False)
    caplog.set_level(logging.WARNING, logger="cascade.security")
    engine = cs.Engine(any_state.uri, any_state.uri, secret_keys=[])
    engine.run(value(3))
    engine.run(value(3))  # a cache hit: reads a pickle from the store
    engine.run(value(3))
    warnings = [r.getMessage() for r in caplog.records if r.name == "cascade.security"]
    if any_state.kind == "redis":  # anyone who can reach the server can write to it
        assert len(warnings) == 1 and "CASCADE_SECRET_KEY" in warnings[0]
    else:  # memory:// and sqlite:// say trusted_store = True
        assert warnings == []


@pytest.mark.parametrize("value", ["", "   ", "\t\n", ",", " , "])
def test_a_blank_secret_key_is_refused(monkeypatch, value):
    monkeypatch.setenv("CASCADE_SECRET_KEY", value)
    with pytest.raises(ConfigurationError) as error:
        cs.run(plus(1))
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
    cs.run(plus(value(1)), state_backend=uri, run_id="a")
    cs.run(plus(value(1)), state_backend=uri, run_id="b")
    warnings = [r.getMessage() for r in caplog.records if r.name == "cascade.security"]
    assert len(warnings) == 1
    assert warnings[0].startswith("CASCADE_SECRET_KEY holds a key of 1 bytes (id ") and "at least 16" in warnings[0]
    with SqliteStateStore(tmp_path / "s.db")("a") as backend:
        payloads = backend.get_results(backend.result_ids())
    assert payloads and all(payload[4:5] == b"h" for payload in payloads.values())  # signed

    caplog.clear()
    monkeypatch.setenv("CASCADE_SECRET_KEY", "a-long-enough-secret-key, k")  # rotation: the old short key is known
    cs.run(plus(value(1)), state_backend=uri, run_id="c")
    assert not [r for r in caplog.records if r.name == "cascade.security"]


def test_an_unset_secret_key_means_unsigned(monkeypatch, tmp_path):
    monkeypatch.delenv("CASCADE_SECRET_KEY", raising=False)
    assert codec.keys_from_env() == []
    assert codec.keys_from_env({"CASCADE_SECRET_KEY": "one two,three"}) == [b"one", b"two", b"three"]


def test_the_cli_refuses_a_blank_secret_key_in_one_line(tmp_path):
    done = cli(
        write_flow(tmp_path, HELLO),
        "run",
        "flow.py:pipeline",
        "--state",
        "sqlite:///s.db",
        env={"CASCADE_SECRET_KEY": "  "},
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: CASCADE_SECRET_KEY is set but holds no key (it is empty or blank): set it to a long random secret, "
        "or unset it to store payloads unsigned\n"
    )
