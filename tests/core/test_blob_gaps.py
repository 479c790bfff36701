"""Blob gaps of issue #13: a lost blob behind a result another driver stored, cache hits copied
into a json state through the blob store, and gc of stale temporary files."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core.blobs.file import FileBlobStore


def _files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file())


# -- a lost blob behind a result another driver stored (Claims.take_stored) ----------------------

BIG_RUNS: list[str] = []
GO = threading.Event()  # set by the second driver once it waits for the first one's lease on `big`


@cs.task(name="big")
def big() -> bytes:
    BIG_RUNS.append(threading.current_thread().name)
    assert GO.wait(30), "the second driver never started"
    return b"\x07" * 300_000


@cs.task(name="marker")
def marker() -> int:
    GO.set()  # claimed with `big` in one batch: `big` is already waiting on the first driver
    return 1


@cs.task(name="after")
def after(data: bytes, one: int) -> int:
    return len(data) + one


@pytest.mark.parametrize("fault", ["missing", "corrupt"])
def test_a_lost_blob_behind_another_drivers_result_runs_the_node_again(tmp_path: Path, caplog, fault: str):
    state = f"sqlite:///{tmp_path / 'shared.db'}"
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    if fault == "corrupt":
        # Learn the blob id of big's result, then give the second driver a truncated blob under it.
        GO.set()
        cs.run(big(), state_backend="memory://", blob_store=f"file://{first_root}?threshold=64KiB", run_id="scratch")
        (path,) = _files(first_root)
        target = second_root / path.relative_to(first_root)
        target.parent.mkdir(parents=True)
        target.write_bytes(path.read_bytes()[:1000])
        shutil.rmtree(first_root)
    GO.clear()
    BIG_RUNS.clear()
    results: dict[str, object] = {}

    def drive(name: str, target, root: Path) -> None:
        try:
            results[name] = cs.run(
                target, state_backend=state, blob_store=f"file://{root}?threshold=64KiB", run_id="shared", leases=True
            )
        except BaseException as exc:  # reported by the assertions below
            results[name] = exc

    first = threading.Thread(target=drive, args=("first", big(), first_root), name="first")
    first.start()
    while not BIG_RUNS:  # the first driver holds big's lease and runs it
        first.join(0.01)
    # The second driver's blob store lacks (or holds a corrupt copy of) the first one's blob, as
    # when gc or an operator removed it: it must run big again, not fail.
    second = threading.Thread(target=drive, args=("second", after(big(), marker()), second_root), name="second")
    with caplog.at_level(logging.WARNING, logger="cascade"):
        second.start()
        first.join(60)
        second.join(60)
    assert results == {"first": 300_000 * b"\x07", "second": 300_001}, results
    assert BIG_RUNS == ["first", "second"]
    warnings = [r.getMessage() for r in caplog.records if "is lost" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once, though the waiting node is looked at twice
    assert warnings[0].startswith("stored result of task big (node ") and warnings[0].endswith("; it runs again")
    assert ("fails its hash" if fault == "corrupt" else "is missing from") in warnings[0]
    # The second driver stored big again through its own store: a third driver resumes from it.
    (blob,) = list(FileBlobStore(str(second_root)).list_blobs())
    assert blob.size > 300_000
    BIG_RUNS.clear()
    again = cs.run(after(big(), marker()), state_backend=state, blob_store=f"file://{second_root}", run_id="shared")
    assert again == 300_001 and BIG_RUNS == []


# -- a cache hit copied into a json state goes through the blob store (CacheLookup._for_state) -----

TEXT_CALLS: list[int] = []


@cs.task(name="text", cache=True)
def text(n: int) -> str:
    TEXT_CALLS.append(n)
    return "x" * 300_000 + str(n)


def _state_payloads(store, run_id: str) -> list[bytes]:
    with store(run_id) as backend:
        return list(backend.get_results(list(backend.result_ids())).values())


def test_a_cache_hit_copied_into_a_json_state_is_stored_by_reference(tmp_path: Path, json_state):
    TEXT_CALLS.clear()
    store, state = json_state
    cache = f"sqlite:///{tmp_path / 'cache.db'}"  # pickle
    root = tmp_path / "blobs"
    blobs = f"file://{root}?threshold=64KiB"
    expected = "x" * 300_000 + "1"
    assert cs.run(text(1), state_backend=state, cache_backend=cache, blob_store=blobs, run_id="computed") == expected
    assert len(_files(root)) == 2  # the cache's pickle and the state's json
    # Another run: a cache hit (pickle), copied into the json state by reference, not whole.
    assert cs.run(text(1), state_backend=state, cache_backend=cache, blob_store=blobs, run_id="hit") == expected
    assert TEXT_CALLS == [1]
    (payload,) = _state_payloads(store, "hit")
    assert len(payload) < 1000 and b"cascade-blob sha256:" in payload
    assert payload[-1:] == b"j"  # the blob it names holds json, which this state reads
    assert len(_files(root)) == 2  # the json blob was there already: written once
    # The reference round-trips on resume, without the cache.
    (tmp_path / "cache.db").unlink()
    resumed = cs.run(text(1), state_backend=state, cache_backend="memory://", blob_store=blobs, run_id="hit")
    assert resumed == expected and TEXT_CALLS == [1]
    store.close()


def test_a_small_cache_hit_is_copied_into_a_json_state_whole(tmp_path: Path, json_state):
    TEXT_CALLS.clear()
    store, state = json_state
    cache = f"sqlite:///{tmp_path / 'cache.db'}"
    blobs = f"file://{tmp_path / 'blobs'}?threshold=1MiB"  # over the value's size
    for run_id in ("computed", "hit"):
        assert cs.run(text(2), state_backend=state, cache_backend=cache, blob_store=blobs, run_id=run_id).endswith("2")
    (payload,) = _state_payloads(store, "hit")
    assert len(payload) > 300_000 and b"cascade-blob" not in payload
    assert TEXT_CALLS == [2] and not (tmp_path / "blobs" / "sha256").exists()
    store.close()


# -- gc deletes the temporary files of killed writes (file://) -----------------------------------


def _gc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE", "CASCADE_BLOBS")}
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", "blobs", "gc", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_gc_deletes_stale_temporary_files_and_keeps_fresh_ones(tmp_path: Path):
    root = tmp_path / "blobs"
    store = FileBlobStore(str(root))
    data = b"\x01" * 1000
    blob_id = "sha256:" + hashlib.sha256(data).hexdigest()
    assert store.put(blob_id, data)
    (blob,) = _files(root)
    stale = blob.with_name(blob.name + ".4242.1.tmp")  # a write killed two hours ago
    stale.write_bytes(b"\x01" * 300)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = blob.parent.parent / "ef" / ("ab" * 32 + ".4243.2.tmp")  # a write under way, in another folder
    fresh.parent.mkdir()
    fresh.write_bytes(b"\x02" * 50)
    assert list(store.list_blobs()) == [(blob_id, 1000, blob.stat().st_mtime)]  # temporaries are no blobs
    args = ["--blobs", f"file://{root}", "--state", "none", "--cache", "none"]  # nothing references it
    stale_name = str(stale.relative_to(root))
    # --dry-run reports the stale one and deletes nothing.
    dry = _gc([*args, "--older-than", "1h", "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert f"would delete temporary file {stale_name}\n" in dry.stdout
    assert "would delete 1 stale temporary files (300 bytes)" in dry.stdout and str(fresh.name) not in dry.stdout
    assert stale.exists() and fresh.exists()
    done = _gc([*args, "--older-than", "1h", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["temporary"] == 2 and report["temporary_deleted"] == [stale_name]
    assert report["temporary_deleted_bytes"] == 300
    assert report["recent"] == 1 and report["deleted"] == []  # the blob itself is recent: kept
    assert not stale.exists() and fresh.exists() and blob.exists()
    # A second gc finds nothing more to delete.
    again = json.loads(_gc([*args, "--older-than", "1h", "--json"], tmp_path).stdout)
    assert again["temporary"] == 1 and again["temporary_deleted"] == []


def test_delete_temporary_refuses_anything_but_a_temporary_file_of_the_store(tmp_path: Path):
    store = FileBlobStore(str(tmp_path / "blobs"))
    outside = tmp_path / "precious.tmp"
    outside.write_bytes(b"keep")
    for name in ("../precious.tmp", "sha256/../../precious.tmp", "sha256/ab/cd/" + "ab" * 32):
        with pytest.raises(ValueError, match="not a temporary file of"):
            store.delete_temporary(name)
    assert outside.exists()
    assert store.delete_temporary("sha256/ab/cd/x.1.2.tmp") is False
