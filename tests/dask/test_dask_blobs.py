"""cascade-dask with a blob store (docs/blobs.md, docs/executors.md): workers write the blobs of
large results and the driver gets only their references; a downstream on a worker reads its
upstream's blob there (verified), also when the upstream is a stored result of an earlier run."""

from __future__ import annotations

import hashlib
import pickle
import sys
import threading
from pathlib import Path

import cloudpickle
import pytest

import cascade_core as cs
from cascade_core._plugins.call import Encoding
from cascade_core._store.blob_protocol import blob_path
from cascade_core.backends.sqlite import SqliteStateStore
from cascade_core.blobs.file import FileBlobStore
from cascade_core.plugin import TaskCall
from cascade_dask import DaskExecutor
from cascade_dask.worker import StoredBlob

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes cannot import this test module

BIG = 2_000_000  # bytes per value: far over the 64KiB threshold


def _log(folder: str, name: str) -> None:
    with open(Path(folder, "calls.log"), "a") as handle:
        handle.write(name + "\n")


def calls(folder: Path, name: str) -> int:
    log = folder / "calls.log"
    return log.read_text().split().count(name) if log.exists() else 0


@cs.task
def make(folder, n):
    _log(folder, "make")
    return bytes(range(256)) * (n // 256)


@cs.task
def grow(folder, data):
    _log(folder, "grow")
    return data + b"g" * 1000


@cs.task
def size(folder, data):
    _log(folder, "size")
    return len(data), hashlib.sha256(data).hexdigest()


def expected(n: int, grows: int) -> bytes:
    return bytes(range(256)) * (n // 256) + b"g" * 1000 * grows


def blob_files(root: Path) -> list[Path]:
    return sorted(path for path in (root / "sha256").rglob("*") if path.is_file())


def stored_payloads(db: Path, run_id: str) -> list[bytes]:
    state = SqliteStateStore(db)(run_id)
    try:
        return list(state.get_results(list(state.result_ids())).values())
    finally:
        state.close()


@pytest.fixture
def driver_reads(monkeypatch):
    """Counts blob reads of file:// stores in this process (the driver; and the workers of a
    processes=False cluster, which share it)."""
    reads: list[str] = []
    real_get = FileBlobStore.get

    def get(self, blob_id):
        reads.append(blob_id)
        return real_get(self, blob_id)

    monkeypatch.setattr(FileBlobStore, "get", get)
    return reads


def test_chain_of_large_values_stores_references_and_workers_write_the_blobs(thread_cluster, tmp_path):
    db, root = tmp_path / "state.db", tmp_path / "blobs"
    folder = str(tmp_path)
    target = grow(folder, grow(folder, make(folder, BIG)))
    value = cs.run(
        target,
        state_backend=f"sqlite:///{db}",
        blob_store=f"file://{root}?threshold=64KiB",
        executor=DaskExecutor(thread_cluster),
        run_id="chain",
    )
    assert value == expected(BIG, 2)
    payloads = stored_payloads(db, "chain")
    assert len(payloads) == 3
    for payload in payloads:  # sealed references (code b"r"), never the 2 MB bodies
        assert len(payload) < 200 and payload[3:4] == b"r"
        assert payload[13:].startswith(b"cascade-blob sha256:")
    bodies = {path.read_bytes() for path in blob_files(root)}
    wanted = {pickle.dumps(expected(BIG, grows), protocol=pickle.HIGHEST_PROTOCOL) for grows in range(3)}
    assert bodies == wanted


def test_resume_runs_only_the_new_task_on_a_stored_reference(thread_cluster, tmp_path):
    db, root = tmp_path / "state.db", tmp_path / "blobs"
    folder = str(tmp_path)
    options = dict(state_backend=f"sqlite:///{db}", blob_store=f"file://{root}?threshold=64KiB", run_id="again")
    upstream = grow(folder, make(folder, BIG))
    cs.run(upstream, executor=DaskExecutor(thread_cluster), **options)
    assert (calls(tmp_path, "make"), calls(tmp_path, "grow")) == (1, 1)
    result = cs.run(size(folder, upstream), executor=DaskExecutor(thread_cluster), **options)
    data = expected(BIG, 1)
    assert result == (len(data), hashlib.sha256(data).hexdigest())
    assert (calls(tmp_path, "make"), calls(tmp_path, "grow"), calls(tmp_path, "size")) == (1, 1, 1)
    assert len(stored_payloads(db, "again")) == 3


def test_worker_processes_read_the_blobs_and_the_driver_never_does(process_cluster, tmp_path, driver_reads):
    db, root = tmp_path / "state.db", tmp_path / "blobs"
    folder = str(tmp_path)
    result = cs.run(
        size(folder, grow(folder, make(folder, BIG))),
        state_backend=f"sqlite:///{db}",
        blob_store=f"file://{root}?threshold=64KiB",
        executor=DaskExecutor(process_cluster),
        run_id="procs",
    )
    data = expected(BIG, 1)
    assert result == (len(data), hashlib.sha256(data).hexdigest())
    assert len(blob_files(root)) == 2  # make's and grow's, written by the workers
    assert driver_reads == []  # the downstreams read them on their workers


def test_a_stored_blob_handle_is_read_on_the_worker_and_a_corrupt_blob_fails_there(
    process_cluster, tmp_path, driver_reads
):
    """What a resumed run hands the executor for a stored upstream whose body is a reference
    (DaskExecutor.hold_reference): the worker, not the driver, reads and verifies the blob."""
    root = tmp_path / "blobs"
    blobs = f"file://{root}"
    body = pickle.dumps(expected(BIG, 0), protocol=pickle.HIGHEST_PROTOCOL)
    blob_id = "sha256:" + hashlib.sha256(body).hexdigest()
    FileBlobStore(root).put(blob_id, body)
    reference = b"cascade-blob %s %d p" % (blob_id.encode(), len(body))
    executor = DaskExecutor(process_cluster)
    handle = executor.hold_reference(reference, Encoding(blobs=blobs))
    assert isinstance(handle, StoredBlob) and handle.reference == reference

    def run_one(index: int):
        outcomes: list = []
        finished = threading.Event()
        call = TaskCall(index, f"n{index}", size, (str(tmp_path), handle), {}, 0, Encoding(blobs=blobs))
        executor.submit(call, lambda outcome: (outcomes.append(outcome), finished.set()))
        assert finished.wait(60)
        return outcomes[0]

    outcome = run_one(0)
    assert outcome.ok, outcome.value
    assert executor.gather([outcome.value])[0] == (len(expected(BIG, 0)), hashlib.sha256(expected(BIG, 0)).hexdigest())
    assert driver_reads == []
    (path,) = blob_files(root)
    path.write_bytes(path.read_bytes()[:-10])  # truncated: fails its hash on the worker
    outcome = run_one(1)
    assert not outcome.ok
    assert isinstance(outcome.value, cs.IntegrityError) and "fails its hash" in str(outcome.value)
    assert driver_reads == []
    with pytest.raises(cs.IntegrityError, match="is missing from"):  # the worker deleted the corrupt blob
        executor.gather([handle])


def test_a_resumed_run_hands_the_workers_the_stored_reference(process_cluster, tmp_path, driver_reads):
    db, root = tmp_path / "state.db", tmp_path / "blobs"
    folder = str(tmp_path)
    options = dict(state_backend=f"sqlite:///{db}", blob_store=f"file://{root}?threshold=64KiB", run_id="handoff")
    upstream = grow(folder, make(folder, BIG))
    cs.run(upstream, executor=DaskExecutor(process_cluster), **options)
    del driver_reads[:]  # the first run's target came to the driver: that read is expected
    result = cs.run(size(folder, upstream), executor=DaskExecutor(process_cluster), **options)
    assert result[0] == len(expected(BIG, 1))
    assert calls(tmp_path, "size") == 1 and calls(tmp_path, "grow") == 1
    assert driver_reads == []


def test_a_resumed_upstream_whose_blob_is_gone_runs_again(thread_cluster, tmp_path):
    db, root = tmp_path / "state.db", tmp_path / "blobs"
    folder = str(tmp_path)
    options = dict(state_backend=f"sqlite:///{db}", blob_store=f"file://{root}?threshold=64KiB", run_id="lost")
    upstream = grow(folder, make(folder, BIG))
    cs.run(upstream, executor=DaskExecutor(thread_cluster), **options)
    grown = pickle.dumps(expected(BIG, 1), protocol=pickle.HIGHEST_PROTOCOL)
    (root / blob_path("sha256:" + hashlib.sha256(grown).hexdigest())).unlink()
    result = cs.run(size(folder, upstream), executor=DaskExecutor(thread_cluster), **options)
    assert result[0] == len(expected(BIG, 1))
    assert (calls(tmp_path, "make"), calls(tmp_path, "grow"), calls(tmp_path, "size")) == (1, 2, 1)
