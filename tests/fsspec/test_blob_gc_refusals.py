"""``cascade blobs gc`` pointed at the wrong stores deletes nothing (issue #21, docs/blobs.md#writers):
a typo'd sqlite path, the default ``.cascade.db`` of another directory, one of two stores left
out. Real subprocesses, on ``file://`` and on ``s3://`` (moto's server)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cascade_core._store import blob_refs

FLOW = """
import os
import cascade_core as cs


@cs.task(cache=True)
def blob(seed: int) -> bytes:
    with open(os.environ["FLOW_LOG"], "a") as log:
        log.write("blob\\n")
    return bytes([seed]) * 300_000


def pipeline(seed: int = 1):
    return blob(seed)
"""


@pytest.fixture(params=["file", "s3"])
def blobs_uri(request, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file://{tmp_path / 'blobs'}?threshold=64KiB"
    return request.getfixturevalue("s3_bucket") + "&threshold=64KiB"


@pytest.fixture
def project(tmp_path: Path, blobs_uri: str):
    """A project folder whose runs wrote blobs through sqlite:///<project>/real.db (state and cache)."""
    home = tmp_path / "project"
    home.mkdir()
    (home / "flow.py").write_text(FLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env.update(FLOW_LOG=str(tmp_path / "log"), CASCADE_BLOBS=blobs_uri)
    real = f"sqlite:///{home / 'real.db'}"
    done = cascade(["run", "flow.py:pipeline", "--state", real, "--cache", real, "--run-id", "r1"], env, home)
    assert done.returncode == 0, done.stderr
    return home, env, real


def cascade(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def blob_ids(uri: str) -> set[str]:
    spec = blob_refs.resolve_blobs(uri)
    assert spec is not None
    return {info.blob_id for info in spec.store.list_blobs()}


def refused(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


def test_a_typo_in_the_state_path_is_refused_and_creates_nothing(project, blobs_uri):
    home, env, real = project
    kept = blob_ids(blobs_uri)
    assert len(kept) == 1
    typo = f"sqlite:///{home / 'reall.db'}"
    for extra in ([], ["--dry-run"], ["--force"]):
        message = refused(
            cascade(["blobs", "gc", "--state", typo, "--cache", real, "--older-than", "0", *extra], env, home)
        )
        assert f"{home / 'reall.db'} does not exist" in message and "gc opens only stores that exist" in message
    assert not (home / "reall.db").exists() and blob_ids(blobs_uri) == kept


def test_a_sqlite_file_of_another_program_is_refused_and_left_unchanged(project, blobs_uri):
    import sqlite3

    home, env, real = project
    kept = blob_ids(blobs_uri)
    foreign = home / "notes.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    before = foreign.read_bytes()
    uri = f"sqlite:///{foreign}"
    message = refused(cascade(["blobs", "gc", "--state", uri, "--cache", real, "--older-than", "0"], env, home))
    assert f"{foreign} is not a Cascade database (its tables: notes)" in message and "gc reads" in message
    assert foreign.read_bytes() == before and blob_ids(blobs_uri) == kept  # no table of ours was created


def test_the_default_store_of_another_directory_is_refused(project, blobs_uri, tmp_path: Path):
    home, env, real = project
    kept = blob_ids(blobs_uri)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "flow.py").write_text(FLOW)
    # No .cascade.db there: refused, and none is created.
    message = refused(cascade(["blobs", "gc", "--older-than", "0"], env, elsewhere))
    assert "--state sqlite:///.cascade.db" in message and "does not exist" in message
    assert not (elsewhere / ".cascade.db").exists()
    # Another project's .cascade.db (its runs wrote no blob): refused by the blob store's record of its writers.
    other = {k: v for k, v in env.items() if k != "CASCADE_BLOBS"}
    assert cascade(["run", "flow.py:pipeline", "-p", "seed=7"], other, elsewhere).returncode == 0
    for extra in ([], ["--dry-run"], ["--json"]):
        message = refused(cascade(["blobs", "gc", "--older-than", "0", *extra], env, elsewhere))
        assert f"holds references written by cache {real}, state {real}, which gc was not given" in message
        assert f"add --cache {real} --state {real}" in message and "--force" in message
    assert blob_ids(blobs_uri) == kept


def test_every_store_that_wrote_must_be_given_or_forced(project, blobs_uri, tmp_path: Path):
    home, env, real = project
    second = f"sqlite:///{home / 'second.db'}"
    done = cascade(["run", "flow.py:pipeline", "-p", "seed=2", "--state", second, "--cache", second], env, home)
    assert done.returncode == 0, done.stderr
    both = blob_ids(blobs_uri)
    assert len(both) == 2
    store = blob_refs.resolve_blobs(blobs_uri).store  # type: ignore[union-attr]
    orphan = bytes([9]) * 100_000
    orphan_id = "sha256:" + hashlib.sha256(orphan).hexdigest()
    assert store.put(orphan_id, orphan)
    one = ["blobs", "gc", "--state", real, "--cache", real, "--older-than", "0"]
    # Given one of the two: refused, naming only the one left out.
    message = refused(cascade([*one, "--dry-run"], env, home))
    assert f"written by cache {second}, state {second}, which" in message and real not in message
    assert blob_ids(blobs_uri) == both | {orphan_id}
    # Given both: only the orphan goes, and run r1 still resumes from its blob without running again.
    every = [*one, "--state", second, "--cache", second, "--json"]
    report = json.loads(cascade(every, env, home).stdout)
    assert report["deleted"] == [orphan_id] and report["referenced"] == 2 and report["not_given"] == []
    assert blob_ids(blobs_uri) == both
    runs_before = (tmp_path / "log").read_text().count("blob")
    done = cascade(["run", "flow.py:pipeline", "--state", real, "--cache", real, "--run-id", "r1"], env, home)
    assert done.returncode == 0 and (tmp_path / "log").read_text().count("blob") == runs_before
    # --force with one of the two: says what it will delete first, deletes the other store's blob ...
    (only_second,) = both - blob_ids_referenced_by_real(blobs_uri, home)
    dry = cascade([*one, "--force", "--dry-run"], env, home)
    assert dry.returncode == 0 and f"would delete {only_second}" in dry.stderr and blob_ids(blobs_uri) == both
    forced = cascade([*one, "--force"], env, home)
    assert forced.returncode == 0, forced.stderr
    warning, listed = forced.stderr.splitlines()[:2]
    assert warning.startswith("warning: --force: gc cannot see the references of cache ") and second in warning
    assert listed == f"will delete {only_second}" and f"deleted {only_second}" in forced.stdout
    assert blob_ids(blobs_uri) == both - {only_second}
    # ... and forgets it, so that the next gc with the remaining store goes through.
    again = cascade([*one, "--json"], env, home)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["deleted"] == []


def blob_ids_referenced_by_real(uri: str, home: Path) -> set[str]:
    from cascade_core._store.blob_gc import state_references
    from cascade_core.backends.sqlite import SqliteStateStore

    catalog = SqliteStateStore(home / "real.db")
    try:
        return state_references(catalog)
    finally:
        catalog.close()
