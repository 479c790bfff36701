"""Blob stores record which state and cache stores write references into them (docs/blobs.md#writers):
how a store is named, when a run records it, and what gc does with a store that keeps no record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core._errors import UsageError
from cascade_core._store.blob_writers import Writer, recorded, writer
from cascade_core._uri import BackendURI
from cascade_core.blobs.file import FileBlobStore
from cascade_core.blobs.memory import MemoryBlobStore
from cascade_core.cli._blobs import _checked_writers


def test_a_sqlite_store_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    here = writer("state", BackendURI.parse("sqlite:///.cascade.db?timeout=5"))
    assert here == Writer("state", f"sqlite:///{tmp_path / '.cascade.db'}")
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    there = writer("state", BackendURI.parse("sqlite:///.cascade.db"))
    assert there is not None and there.name != here.name  # the same text, another file
    assert writer("cache", BackendURI.parse("memory://")) is None  # lives in its process: not recorded


def test_a_secret_is_never_in_the_marker(tmp_path):
    found = writer("cache", BackendURI.parse("redis://:hunter2@db.example:6380/1?ttl=60&prefix=p"))
    assert found is not None
    assert found.uri == "redis://:***@db.example:6380/1?prefix=p&ttl=60"  # masked, options sorted
    store = FileBlobStore(str(tmp_path / "blobs"))
    store.put_marker(found.name, found.data())
    raw = b"".join(p.read_bytes() for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert b"hunter2" not in raw and b"hunter2" not in found.name.encode()
    assert recorded(store) == {found.name: found}
    # Another password, the same store: the same marker.
    other = writer("cache", BackendURI.parse("redis://:other@db.example:6380/1?prefix=p&ttl=60"))
    assert other is not None and other.name == found.name


class CountingStore(MemoryBlobStore):
    def __init__(self) -> None:
        super().__init__("counting")
        self.marker_writes: list[str] = []

    def put_marker(self, name: str, data: bytes) -> None:
        self.marker_writes.append(name)
        super().put_marker(name, data)


@cs.task
def big(seed: int) -> bytes:
    return bytes([seed]) * 2_000_000


def test_a_run_records_its_stores_once_per_process_not_per_blob(tmp_path):
    store = CountingStore()
    state = f"sqlite:///{tmp_path / 's.db'}"
    cache = f"sqlite:///{tmp_path / 'c.db'}"
    for seed in (1, 2, 3):
        assert len(cs.run(big(seed), state_backend=state, cache_backend=cache, blob_store=store)) == 2_000_000
    assert len(list(store.list_blobs())) == 3
    expected = [Writer("state", f"sqlite:///{tmp_path / 's.db'}"), Writer("cache", f"sqlite:///{tmp_path / 'c.db'}")]
    assert store.marker_writes == [w.name for w in expected]  # three runs, three blobs: two marker writes
    assert recorded(store) == {w.name: w for w in expected}
    # memory:// stores (the default) and stores given as objects record nothing.
    fresh = CountingStore()
    cs.run(big(4), blob_store=fresh)
    assert fresh.marker_writes == [] and len(list(fresh.list_blobs())) == 1


class NoMarkers:
    """A third-party store of the first contract: no marker methods."""

    def __init__(self) -> None:
        self.inner = MemoryBlobStore("plain")

    def __getattr__(self, name: str):
        if name in ("put", "get", "exists", "delete", "list_blobs", "close"):
            return getattr(self.inner, name)
        raise AttributeError(name)


def test_a_store_without_markers_still_runs_and_gc_needs_force(tmp_path):
    store = NoMarkers()
    state = f"sqlite:///{tmp_path / 's.db'}"
    assert len(cs.run(big(5), state_backend=state, blob_store=store)) == 2_000_000
    assert len(list(store.list_blobs())) == 1
    given = [("state", BackendURI.parse(state))]
    with pytest.raises(UsageError, match=r"does not record which stores write references into it.*--force"):
        _checked_writers(store, "plain://", given, force=False)
    assert _checked_writers(store, "plain://", given, force=True) == []


def test_markers_are_neither_blobs_nor_temporary_files(tmp_path):
    store = FileBlobStore(str(tmp_path / "blobs"))
    store.put_marker("state-abc", b"{}")
    store.put_marker("state-abc", b'{"role": "state", "uri": "x"}')  # replaced
    assert list(store.list_blobs()) == [] and list(store.list_temporary()) == []
    assert list(store.list_markers()) == [("state-abc", b'{"role": "state", "uri": "x"}')]
    assert store.delete_marker("state-abc") is True and store.delete_marker("state-abc") is False
    for bad in ("../x", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="not a marker name"):
            store.put_marker(bad, b"")
    du = subprocess.run(
        [sys.executable, "-m", "cascade_core", "blobs", "du", "--blobs", f"file://{tmp_path / 'blobs'}", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(du.stdout)["count"] == 0


def test_gc_refuses_a_memory_store_and_takes_none(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    base = [sys.executable, "-m", "cascade_core", "blobs", "gc", "--blobs", f"file://{tmp_path / 'b'}"]
    done = subprocess.run([*base, "--state", "memory://"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --state memory://: a memory:// store lives in the process that ran, so gc cannot read it: "
        "pass the state store the runs used, or --state none"
    )
    done = subprocess.run(
        [*base, "--state", "none", "--cache", "none"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".cascade.db").exists()
