"""Large results by reference: blob stores (file://, memory://), references in state and cache
(a cache hit copied into a json state included), laziness, integrity, and what happens when a
blob is lost (docs/blobs.md)."""

from __future__ import annotations

import hashlib
import logging
import pickle
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core._store.blob_protocol import blob_path
from cascade_core._store.codec import Codec, state_key
from cascade_core.backends.sqlite import SqliteStateStore
from cascade_core.blobs.file import FileBlobStore
from cascade_core.blobs.memory import MemoryBlobStore

BIG = 200_000  # bytes: over the 64KiB threshold the tests use


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Counting:
    """Tasks whose executions are counted in a file (so counts survive across runs)."""

    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "calls.log"

    def hit(self, name: str) -> None:
        with open(self.log, "a") as handle:
            handle.write(name + "\n")

    def count(self, name: str) -> int:
        return self.log.read_text().split().count(name) if self.log.exists() else 0


@pytest.fixture
def flow(tmp_path: Path):
    calls = Counting(tmp_path)

    @cs.task
    def make(n: int) -> bytes:
        calls.hit("make")
        return bytes(range(256)) * (n // 256)

    @cs.task
    def size(data: bytes) -> int:
        calls.hit("size")
        return len(data)

    @cs.task
    def small(n: int) -> int:
        calls.hit("small")
        return n + 1

    return calls, make, size, small


def test_large_result_is_stored_once_by_content_and_state_holds_a_sealed_reference(tmp_path, flow):
    calls, make, size, _ = flow
    root = tmp_path / "blobs"
    db = f"sqlite:///{tmp_path / 'c.db'}"
    value = cs.run(make(BIG), state_backend=db, blob_store=f"file://{root}?threshold=64KiB", run_id="r1")
    assert len(value) == BIG - BIG % 256
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    (only,) = blob_files(root)
    assert only == root / blob_path("sha256:" + sha(body))  # <root>/sha256/ab/cd/<hex>
    assert only.read_bytes() == body
    assert only.relative_to(root).parts[:3] == ("sha256", sha(body)[:2], sha(body)[2:4])
    state = SqliteStateStore(tmp_path / "c.db")("r1")
    (payload,) = state.get_results(list(state.result_ids())).values()
    assert len(payload) < 200 and payload[3:4] == b"r"  # a small reference, not the body
    assert f"sha256:{sha(body)} {len(body)} p".encode() in payload
    codec = Codec()
    node_id = next(iter(state.result_ids()))
    code, ref = codec.open(state_key("r1", node_id), payload)  # sealed: checksum bound to its key
    assert code == b"r" and ref.startswith(b"cascade-blob sha256:")
    with pytest.raises(cs.IntegrityError, match="fails its checksum"):
        codec.open(state_key("r1", node_id), payload.replace(sha(body)[:8].encode(), b"00000000"))
    state.close()


def test_reference_is_signed_when_signing_is_on(tmp_path, flow, monkeypatch):
    _, make, _, _ = flow
    monkeypatch.setenv("CASCADE_SECRET_KEY", "k" * 32)
    db = tmp_path / "c.db"
    cs.run(make(BIG), state_backend=f"sqlite:///{db}", blob_store=f"file://{tmp_path}/b?threshold=64KiB", run_id="s")
    state = SqliteStateStore(db)("s")
    (payload,) = state.get_results(list(state.result_ids())).values()
    assert payload[3:5] == b"rh"  # reference, HMAC mode
    state.close()


def test_below_threshold_and_without_blob_store_nothing_changes(tmp_path, flow):
    _, make, _, small = flow
    root = tmp_path / "blobs"
    assert cs.run(small(1), blob_store=f"file://{root}") == 2
    assert cs.run(make(BIG), blob_store=f"file://{root}") == make.fn(BIG)  # default threshold 1 MiB
    assert blob_files(root) == []
    state = cs.MemoryStateStore()
    cs.run(make(BIG), state_backend=state, run_id="plain")
    (payload,) = state("plain").get_results(list(state("plain").result_ids())).values()
    assert payload[3:4] == b"p" and len(payload) > 150_000


def test_same_value_from_another_run_writes_no_blob_bytes(tmp_path, flow):
    calls, make, _, _ = flow
    root = tmp_path / "blobs"
    uri = f"file://{root}?threshold=64KiB"
    cs.run(make(BIG), blob_store=uri, run_id="a")
    (only,) = blob_files(root)
    before = (only.stat().st_ino, only.read_bytes())
    cs.run(make(BIG), blob_store=uri, run_id="b")
    assert calls.count("make") == 2
    assert blob_files(root) == [only] and (only.stat().st_ino, only.read_bytes()) == before  # not rewritten


def test_resume_downloads_a_blob_only_when_a_running_task_needs_it(tmp_path, flow):
    calls, make, size, small = flow
    store = MemoryBlobStore()
    reads: list[str] = []
    get = store.get
    store.get = lambda blob_id: reads.append(blob_id) or get(blob_id)  # type: ignore[method-assign]
    store.threshold = 65536  # type: ignore[attr-defined]
    db = f"sqlite:///{tmp_path / 'c.db'}"
    target = size(make(BIG))
    assert cs.run(target, state_backend=db, blob_store=store, run_id="r") == BIG - BIG % 256
    assert reads == []
    # Everything stored: the resume reads no blob.
    assert cs.run(target, state_backend=db, blob_store=store, run_id="r") == BIG - BIG % 256
    assert reads == [] and calls.count("make") == 1 and calls.count("size") == 1
    # A task downstream of a stored small result: still no read.
    assert cs.run(small(size(make(BIG))), state_backend=db, blob_store=store, run_id="r") == BIG - BIG % 256 + 1
    assert reads == []

    @cs.task
    def first(data: bytes) -> int:
        return data[1]

    # A new task needs make's value: one read, make does not run again.
    assert cs.run(first(make(BIG)), state_backend=db, blob_store=store, run_id="r") == 1
    assert len(reads) == 1 and calls.count("make") == 1


def test_engine_and_arun_take_blob_store(tmp_path, flow):
    import asyncio

    _, make, size, _ = flow
    root = tmp_path / "b"
    engine = cs.Engine(blob_store=f"file://{root}?threshold=64KiB", executor="threads://?max_workers=4")
    assert engine.run([size(make(BIG)), size(make(BIG + 256))]) == [BIG - BIG % 256, BIG - BIG % 256 + 256]
    assert len(blob_files(root)) == 2
    value = asyncio.run(cs.arun(make(BIG + 512), blob_store=f"file://{root}?threshold=64KiB"))
    assert len(value) == BIG - BIG % 256 + 512 and len(blob_files(root)) == 3


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip"])
def test_lost_blob_behind_a_state_result_makes_the_node_run_again(tmp_path, flow, caplog, damage):
    calls, make, size, small = flow
    root = tmp_path / "blobs"
    uri = f"file://{root}?threshold=64KiB"
    db = f"sqlite:///{tmp_path / 'c.db'}"
    cs.run(make(BIG), state_backend=db, blob_store=uri, run_id="r")
    (only,) = blob_files(root)
    good = only.read_bytes()
    if damage == "delete":
        only.unlink()
    elif damage == "truncate":
        only.write_bytes(good[:1000])
    else:
        only.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with caplog.at_level(logging.WARNING, logger="cascade"):
        assert cs.run(size(make(BIG)), state_backend=db, blob_store=uri, run_id="r") == BIG - BIG % 256
    assert calls.count("make") == 2 and calls.count("size") == 1
    (warning,) = [r.getMessage() for r in caplog.records if "is lost" in r.getMessage()]
    assert "stored result of task" in warning and f"sha256:{sha(good)}" in warning and "it runs again" in warning
    assert only.read_bytes() == good  # written again


def test_lost_blob_behind_a_cache_entry_is_a_miss(tmp_path, flow, caplog):
    calls = Counting(tmp_path)

    @cs.task(cache=True)
    def heavy(n: int) -> bytes:
        calls.hit("heavy")
        return b"z" * n

    root = tmp_path / "blobs"
    uri = f"file://{root}?threshold=64KiB"
    cache = f"sqlite:///{tmp_path / 'cache.db'}"
    assert len(cs.run(heavy(BIG), cache_backend=cache, blob_store=uri)) == BIG
    assert len(cs.run(heavy(BIG), cache_backend=cache, blob_store=uri)) == BIG
    assert calls.count("heavy") == 1  # the second run was a cache hit through the reference
    (only,) = blob_files(root)
    only.unlink()
    with caplog.at_level(logging.WARNING, logger="cascade"):
        assert cs.run(heavy(BIG), cache_backend=cache, blob_store=uri) == b"z" * BIG
    assert calls.count("heavy") == 2
    assert any("ignoring cache entry" in r.getMessage() and "missing" in r.getMessage() for r in caplog.records)
    assert only.exists()
    assert cs.run(heavy(BIG), cache_backend=cache, blob_store=uri) == b"z" * BIG
    assert calls.count("heavy") == 2


def test_references_without_a_blob_store_rerun_with_a_warning(tmp_path, flow, caplog):
    calls, make, size, _ = flow
    db = f"sqlite:///{tmp_path / 'c.db'}"
    cs.run(make(BIG), state_backend=db, blob_store=f"file://{tmp_path}/b?threshold=64KiB", run_id="r")
    with caplog.at_level(logging.WARNING, logger="cascade"):
        assert cs.run(size(make(BIG)), state_backend=db, run_id="r") == BIG - BIG % 256
    assert calls.count("make") == 2
    assert any("this run has no blob store" in r.getMessage() for r in caplog.records)


def test_a_result_over_the_state_limit_works_with_a_blob_store(tmp_path, flow):
    _, make, _, _ = flow

    class Limited(cs.MemoryStateBackend):
        max_payload_bytes = 1000
        max_payload_option = "max_value_size"

    with pytest.raises(cs.TaskFailed, match="over the state backend's limit"):
        cs.run(make(BIG), state_backend=Limited("x"))
    assert len(cs.run(make(BIG), state_backend=Limited("y"), blob_store=f"file://{tmp_path}?threshold=64KiB")) > 1000


def test_bad_blob_store_arguments_are_one_line_errors(tmp_path, flow):
    _, _, _, small = flow
    with pytest.raises(cs.InvalidURIError, match="invalid value 'lots' for option 'threshold'"):
        cs.run(small(1), blob_store=f"file://{tmp_path}?threshold=lots")
    with pytest.raises(cs.InvalidURIError, match="unknown option 'color'"):
        cs.run(small(1), blob_store=f"file://{tmp_path}?color=red")
    with pytest.raises(cs.BackendNotFoundError, match="unknown backend scheme 'nope'"):
        cs.run(small(1), blob_store="nope://x")
    refused = r"sqlite:// \(cascade-core\) provides no blob store, only state and cache"
    with pytest.raises(cs.PluginError, match=refused):
        cs.run(small(1), blob_store=f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(cs.DefinitionError, match="blob_store must be a URI"):
        cs.run(small(1), blob_store=42)


def test_unreachable_blob_store_fails_the_task_naming_the_masked_uri_and_resume_completes(tmp_path, flow):
    calls, make, size, _ = flow
    root = tmp_path / "blobs"
    root.write_text("not a folder")  # the store cannot write
    db = f"sqlite:///{tmp_path / 'c.db'}"
    uri = f"file://{root}?threshold=64KiB"
    with pytest.raises(cs.TaskFailed, match=f"blob store file://{root} failed to store sha256:"):
        cs.run(size(make(BIG)), state_backend=db, blob_store=uri, run_id="r")
    root.unlink()
    assert cs.run(size(make(BIG)), state_backend=db, blob_store=uri, run_id="r") == BIG - BIG % 256
    assert calls.count("make") == 2 and calls.count("size") == 1


def test_file_store_contract_write_once_atomic_and_listing(tmp_path):

    store = FileBlobStore(str(tmp_path))
    data = b"hello" * 1000
    blob_id = "sha256:" + sha(data)
    assert store.put(blob_id, data) is True
    assert store.put(blob_id, b"other bytes") is False  # write-once: the first stays
    assert store.get(blob_id) == data and store.exists(blob_id)
    (tmp_path / "sha256" / "aa").mkdir()
    (tmp_path / "sha256" / "aa" / "partial.123.tmp").write_bytes(b"x")  # a write in progress
    assert [info.blob_id for info in store.list_blobs()] == [blob_id]
    assert store.delete(blob_id) is True and store.delete(blob_id) is False
    assert store.get(blob_id) is None
    with pytest.raises(ValueError):
        store.put("sha256:../../etc", b"x")


def test_worker_in_another_process_writes_the_blob_itself(tmp_path):
    """The TaskCall carries the blob store's URI, never an open store: a process pool works."""
    import concurrent.futures

    from cascade_core.plugin import Outcome, run_call
    from cascade_core.testing import executor_tasks

    class Pool:
        max_workers = 2

        def __init__(self) -> None:
            import multiprocessing

            # spawn: a fresh interpreter, as on another machine (and no fork of a threaded driver)
            self.pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
            self.bodies: list[bytes] = []

        def submit(self, call, done):
            assert "file://" not in repr(call.encoding)  # the URI is not shown
            future = self.pool.submit(run_call, call)

            def finished(f):
                outcome: Outcome = f.result()
                self.bodies.append(outcome.body)
                done(outcome)

            future.add_done_callback(finished)
            return future

        def close(self):
            self.pool.shutdown()

    pool = Pool()
    root = tmp_path / "blobs"
    try:
        value = cs.run(executor_tasks.echo("ab" * 100_000), executor=pool, blob_store=f"file://{root}?threshold=1K")
    finally:
        pool.close()
    assert value == (("ab" * 100_000,), {})
    assert all(len(body) < 200 for body in pool.bodies)  # only references came back
    assert len(blob_files(root)) == 1


# -- a cache hit copied into a json state goes through the blob store --------------------------


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
    assert len(blob_files(root)) == 2  # the cache's pickle and the state's json
    # Another run: a cache hit (pickle), copied into the json state by reference, not whole.
    assert cs.run(text(1), state_backend=state, cache_backend=cache, blob_store=blobs, run_id="hit") == expected
    assert TEXT_CALLS == [1]
    (payload,) = _state_payloads(store, "hit")
    assert len(payload) < 1000 and b"cascade-blob sha256:" in payload
    assert payload[-1:] == b"j"  # the blob it names holds json, which this state reads
    assert len(blob_files(root)) == 2  # the json blob was there already: written once
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
