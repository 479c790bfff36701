"""cascade-dask with a blob store, the driver-side reads of issue #14 closed: a cache hit whose
entry is a blob reference and a result another driver stored by reference travel to the workers
as the reference (the executor's hold_reference), never read in the driver; plus the executor's
repr without a scheduler round trip, and no result left behind by a call cancelled mid-run."""

from __future__ import annotations

import hashlib
import logging
import pickle
import sys
import threading
import time
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
from cascade_dask import worker as dask_worker

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes cannot import this test module

BIG = 2_000_000  # bytes per value: far over the 64KiB threshold


def _log(folder: str, name: str) -> None:
    with open(Path(folder, "calls.log"), "a") as handle:
        handle.write(name + "\n")


def calls(folder: Path, name: str) -> int:
    log = folder / "calls.log"
    return log.read_text().split().count(name) if log.exists() else 0


def _wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


@cs.task(cache=True)
def cached_make(folder, n):
    _log(folder, "make")
    return bytes(range(256)) * (n // 256)


@cs.task
def size(folder, data):
    _log(folder, "size")
    return len(data), hashlib.sha256(data).hexdigest()


def expected_size(n: int) -> tuple[int, str]:
    data = bytes(range(256)) * (n // 256)
    return len(data), hashlib.sha256(data).hexdigest()


def stored_payloads(db: Path, run_id: str) -> list[bytes]:
    state = SqliteStateStore(db)(run_id)
    try:
        return list(state.get_results(list(state.result_ids())).values())
    finally:
        state.close()


@pytest.fixture
def driver_reads(monkeypatch):
    """(thread name, blob id) of every file:// blob read in this process: the driver's (with a
    processes=True cluster the workers read in their own processes)."""
    reads: list[tuple[str, str]] = []
    real_get = FileBlobStore.get

    def get(self, blob_id):
        reads.append((threading.current_thread().name, blob_id))
        return real_get(self, blob_id)

    monkeypatch.setattr(FileBlobStore, "get", get)
    return reads


def _options(tmp_path: Path) -> dict:
    return dict(
        state_backend=f"sqlite:///{tmp_path / 'state.db'}",
        cache_backend=f"sqlite:///{tmp_path / 'cache.db'}",
        blob_store=f"file://{tmp_path / 'blobs'}?threshold=64KiB",
    )


# -- (a) a cache hit stored by reference feeds a downstream on a worker -----------------------------


def test_a_cache_hit_stored_by_reference_goes_to_the_worker_unread(process_cluster, tmp_path, driver_reads):
    folder, options = str(tmp_path), _options(tmp_path)
    target = size(folder, cached_make(folder, BIG))
    assert cs.run(target, executor=DaskExecutor(process_cluster), run_id="cold", **options) == expected_size(BIG)
    assert driver_reads == []  # the worker wrote make's blob, and the downstream's worker read it
    # A warm rerun (another run id): make is a cache hit whose entry is a reference; size runs.
    assert cs.run(target, executor=DaskExecutor(process_cluster), run_id="warm", **options) == expected_size(BIG)
    assert (calls(tmp_path, "make"), calls(tmp_path, "size")) == (1, 2)
    assert driver_reads == []  # the hit went to size's worker as the reference
    payloads = stored_payloads(tmp_path / "state.db", "warm")
    references = [payload for payload in payloads if payload[13:].startswith(b"cascade-blob sha256:")]
    assert len(payloads) == 2 and len(references) == 1  # the hit copied into the state as its reference
    assert len(references[0]) < 200
    # The hit as the target: the engine gathers it, so the driver reads the blob (once), correctly.
    value = cs.run(cached_make(folder, BIG), executor=DaskExecutor(process_cluster), run_id="target", **options)
    assert value == bytes(range(256)) * (BIG // 256)
    assert calls(tmp_path, "make") == 1
    assert len(driver_reads) == 1


# -- (b) the same cache hit with its blob gone: a miss, the task runs again --------------------------


def test_a_cache_hit_whose_blob_is_gone_runs_again(thread_cluster, tmp_path, caplog):
    folder, options = str(tmp_path), _options(tmp_path)
    target = size(folder, cached_make(folder, BIG))
    cs.run(target, executor=DaskExecutor(thread_cluster), run_id="cold", **options)
    body = pickle.dumps(bytes(range(256)) * (BIG // 256), protocol=pickle.HIGHEST_PROTOCOL)
    blob_id = "sha256:" + hashlib.sha256(body).hexdigest()
    (tmp_path / "blobs" / blob_path(blob_id)).unlink()
    with caplog.at_level(logging.WARNING, logger="cascade"):
        result = cs.run(target, executor=DaskExecutor(thread_cluster), run_id="warm", **options)
    assert result == expected_size(BIG)
    assert (calls(tmp_path, "make"), calls(tmp_path, "size")) == (2, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("ignoring cache entry: blob " + blob_id) and "is missing from" in warnings[0]
    assert warnings[0].endswith("the task runs again and overwrites it")
    assert FileBlobStore(tmp_path / "blobs").exists(blob_id)  # written again by the rerun
    # The entry is whole again: the next run takes the hit.
    assert cs.run(target, executor=DaskExecutor(thread_cluster), run_id="after", **options) == expected_size(BIG)
    assert calls(tmp_path, "make") == 2


def test_a_cache_hit_whose_blob_is_corrupt_fails_on_the_worker_and_the_run_resumes_once(
    thread_cluster, tmp_path, caplog
):
    folder, options = str(tmp_path), _options(tmp_path)
    target = size(folder, cached_make(folder, BIG))
    cs.run(target, executor=DaskExecutor(thread_cluster), run_id="cold", **options)
    body = pickle.dumps(bytes(range(256)) * (BIG // 256), protocol=pickle.HIGHEST_PROTOCOL)
    blob_id = "sha256:" + hashlib.sha256(body).hexdigest()
    path = tmp_path / "blobs" / blob_path(blob_id)
    path.write_bytes(path.read_bytes()[:-10])  # present, so handed over unread; fails its hash where read
    with caplog.at_level(logging.WARNING, logger="cascade"):
        result = cs.run(target, executor=DaskExecutor(thread_cluster), run_id="warm", **options)
    assert result == expected_size(BIG)  # the run completed: the resume recomputed make
    assert (calls(tmp_path, "make"), calls(tmp_path, "size")) == (2, 2)  # size never ran on the bad bytes
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("fails its hash" in w and w.endswith("resuming run warm once to recompute it") for w in warnings)
    assert FileBlobStore(tmp_path / "blobs").get(blob_id) == body  # written again, whole


def test_a_target_whose_cached_blob_is_corrupt_is_recomputed_by_a_resume(thread_cluster, tmp_path, caplog):
    folder, options = str(tmp_path), _options(tmp_path)
    cs.run(cached_make(folder, BIG), executor=DaskExecutor(thread_cluster), run_id="cold", **options)
    body = pickle.dumps(bytes(range(256)) * (BIG // 256), protocol=pickle.HIGHEST_PROTOCOL)
    path = tmp_path / "blobs" / blob_path("sha256:" + hashlib.sha256(body).hexdigest())
    path.write_bytes(path.read_bytes()[:-10])  # the hit goes to the executor unread; its gather finds this
    with caplog.at_level(logging.WARNING, logger="cascade"):
        value = cs.run(cached_make(folder, BIG), executor=DaskExecutor(thread_cluster), run_id="warm", **options)
    assert value == bytes(range(256)) * (BIG // 256)
    assert calls(tmp_path, "make") == 2  # recomputed by the resume
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("fails its hash" in w and w.endswith("resuming run warm once to recompute it") for w in warnings)


# -- (c) leases=True: a result another driver stored by reference -----------------------------------


@cs.task
def big(folder):
    Path(folder, "big-started").touch()
    _wait_for(Path(folder, "go"))
    _log(folder, "big")
    return b"\x07" * BIG


@cs.task
def marker(folder):
    Path(folder, "go").touch()  # claimed with `big` in one batch: `big` is already waiting on the first driver
    return 1


@cs.task
def after(data, one):
    return len(data) + one


def test_a_result_another_driver_stored_by_reference_goes_to_the_worker_unread(process_cluster, tmp_path, driver_reads):
    folder = str(tmp_path)
    options = dict(
        state_backend=f"sqlite:///{tmp_path / 'shared.db'}",
        blob_store=f"file://{tmp_path / 'blobs'}?threshold=64KiB",
        run_id="shared",
        leases=True,
    )
    results: dict[str, object] = {}

    def drive(name: str, target) -> None:
        try:
            results[name] = cs.run(target, executor=DaskExecutor(process_cluster), **options)
        except BaseException as exc:  # reported by the assertions below
            results[name] = exc

    first = threading.Thread(target=drive, args=("first", big(folder)), name="first")
    first.start()
    _wait_for(tmp_path / "big-started")  # the first driver holds big's lease and runs it
    second = threading.Thread(target=drive, args=("second", after(big(folder), marker(folder))), name="second")
    second.start()
    first.join(120)
    second.join(120)
    assert results == {"first": b"\x07" * BIG, "second": BIG + 1}, results
    assert calls(tmp_path, "big") == 1
    # The first driver read big's blob for its target; the second took big's stored reference from
    # the state and handed it to after's worker, which read the blob in its own process.
    assert [name for name, _ in driver_reads] == ["first"]


# -- (d) repr: no round trip to the scheduler --------------------------------------------------------


def test_repr_asks_the_scheduler_nothing(thread_cluster, tmp_path, monkeypatch):
    executor = DaskExecutor(thread_cluster)
    address = thread_cluster.scheduler.address
    asked: list[str] = []

    def refuse(name):
        def call(*args, **kwargs):
            asked.append(name)
            raise AssertionError(f"repr asked the scheduler ({name})")

        return call

    with monkeypatch.context() as patch:
        for name in ("scheduler_info", "sync", "nthreads"):  # every round trip of a sync client goes through sync
            patch.setattr(thread_cluster, name, refuse(name))
        assert repr(executor) == f"DaskExecutor({address}, 1 worker)"
    with monkeypatch.context() as patch:
        patch.setattr(thread_cluster, "scheduler_info", refuse("scheduler_info"))
        # The engine labels an executor object with its repr once per run.
        run = cs.run(size(str(tmp_path), b"abc"), state_backend=cs.MemoryStateStore(), executor=executor)
        assert run[0] == 3
    assert asked == []
    executor.close()


# -- a call cancelled while it runs on an in-process worker leaves nothing in the inbox ---------------


@cs.task
def slow(folder):
    Path(folder, "started").touch()
    _wait_for(Path(folder, "release"))
    return "late"


def test_a_call_cancelled_while_running_leaves_no_result_in_the_inbox(thread_cluster, tmp_path, monkeypatch):
    posted = threading.Event()
    real_post = dask_worker._post

    def post(result, inbox):
        try:
            return real_post(result, inbox)
        finally:
            posted.set()

    monkeypatch.setattr(dask_worker, "_post", post)
    executor = DaskExecutor(thread_cluster)
    outcomes: list = []
    reported = threading.Event()
    call = TaskCall(0, "cancelled-node", slow, (str(tmp_path),), {}, 0, Encoding())
    handle = executor.submit(call, lambda outcome: (outcomes.append(outcome), reported.set()))
    _wait_for(tmp_path / "started")
    handle.cancel()
    assert reported.wait(30)
    assert not outcomes[0].ok
    (tmp_path / "release").touch()  # the worker thread finishes the cancelled call and posts
    assert posted.wait(30)
    assert executor._inbox == {}
    # The inbox still serves the calls that finish.
    done = threading.Event()
    executor.submit(TaskCall(1, "next-node", size, (str(tmp_path), b"xy"), {}, 0, Encoding()), lambda o: done.set())
    assert done.wait(30)
    assert executor._inbox == {}
    executor.close()
