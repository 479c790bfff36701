"""A store set to json (``serializer = "json"``, ``?serializer=json`` on Redis) never unpickles:
a planted pickle in its state is refused on resume, one in its cache is a miss that is
recomputed and overwritten; a pickle store still reads what a json store wrote. On memory://,
sqlite:// and a real redis-server (any_state); through the CLI on Redis (``?serializer=json``)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest
from cascade_test_cli import cli

import cascade_core as cs
from cascade_core._store.codec import Codec, cache_storage_key, state_key


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


def test_a_planted_pickle_in_a_json_state_is_refused_on_resume(tmp_path, any_state):
    marker = tmp_path / "ran"
    state = any_state.json_state()
    assert cs.run(total(make(3)), state_backend=state, run_id="r") == 7
    backend = any_state.state("r")
    ids = sorted(backend.result_ids())
    assert len(ids) == 2
    backend.put_results({node_id: _planted(state_key("r", node_id), marker) for node_id in ids})
    CALLS.clear()
    with pytest.raises(cs.IntegrityError) as error:
        cs.run(total(make(3)), state_backend=state, run_id="r")
    assert "was written with pickle, but this backend is set to json and reads only json" in str(error.value)
    assert "\n" not in str(error.value) and error.value.key.startswith("state/r/")
    assert not marker.exists() and CALLS == []


def test_a_planted_pickle_in_a_json_cache_is_recomputed_and_overwritten(tmp_path, any_state, caplog):
    marker = tmp_path / "ran"
    cache = any_state.cache("json")
    assert cs.run([square(2), square(3)], cache_backend=cache) == [4, 9]
    keys = [key for key, _ in cache.iter_entries()]
    assert len(keys) == 2
    cache.set_many({key: _planted(cache_storage_key(key), marker) for key in keys})
    CALLS.clear()
    caplog.set_level(logging.WARNING, logger="cascade")
    assert cs.run([square(2), square(3)], cache_backend=cache) == [4, 9]
    assert CALLS == ["square", "square"]  # recomputed
    assert not marker.exists()
    refused = [r.getMessage() for r in caplog.records if "was written with pickle" in r.getMessage()]
    assert refused and all("set to json" in message for message in refused)
    assert {payload[3:4] for payload in cache.get_many(keys).values()} == {b"j"}  # overwritten as json


def test_a_pickle_store_still_reads_what_a_json_store_wrote(any_state):
    assert cs.run([square(4)], cache_backend=any_state.cache("json")) == [16]
    CALLS.clear()
    assert cs.run([square(4)], cache_backend=any_state.cache()) == [16]
    assert CALLS == []


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


@pytest.mark.redis
def test_the_cli_refuses_a_planted_pickle_in_one_line(redis_uri, redis_server, tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "flow.py").write_text(PLANTED_FLOW)
    args = [
        "run",
        "flow.py:pipeline",
        "--state",
        redis_uri + "?serializer=json",
        "--cache",
        "memory://",
        "--run-id",
        "cli",
    ]
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
