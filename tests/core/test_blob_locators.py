"""Blob references with a locator (docs/blobs.md#references): the optional 5th field, written by a
store with the BlobLocators capability, read first, and verified like every blob read."""

from __future__ import annotations

import hashlib
import os
import pickle

import pytest

import cascade_core as cs
from cascade_core._errors import BlobError
from cascade_core._store.blob_gc import references
from cascade_core._store.blob_refs import make_reference, parse_reference, resolve_blobs
from cascade_core.blobs.memory import MemoryBlobStore
from cascade_core.plugin import BlobLocators, is_locator

HEX = "ab" * 32


class LocatedStore(MemoryBlobStore):
    """A memory store whose blobs also sit on a shared ``shelf`` under locators (as IPFS blocks sit
    on the network under CIDs): another LocatedStore with the same shelf and an empty index of its
    own reads them only by locator."""

    threshold = 1024  # results over 1 KiB are blobs

    def __init__(self, shelf: dict[str, bytes], locator: str | None = "") -> None:
        super().__init__()
        self.shelf = shelf
        self.fixed = locator  # "": the real one; None: gives none; else always this one
        self.located_reads = 0

    def put(self, blob_id: str, data: bytes) -> bool:
        self.shelf["at-" + blob_id[7:19]] = bytes(data)
        return super().put(blob_id, data)

    def locate(self, blob_id: str) -> str | None:
        return "at-" + blob_id[7:19] if self.fixed == "" else self.fixed

    def get_located(self, blob_id: str, locator: str) -> bytes | None:
        self.located_reads += 1
        return self.shelf.get(locator)

    def exists_located(self, blob_id: str, locator: str) -> bool:
        return locator in self.shelf


def test_a_reference_has_four_fields_or_five_with_a_locator():
    old = parse_reference(b"cascade-blob sha256:%s 12 p" % HEX.encode())
    assert old == (f"sha256:{HEX}", 12, b"p", None) and old.locator is None
    new = parse_reference(b"cascade-blob sha256:%s 12 j bafybeigdyrzt" % HEX.encode())
    assert new is not None and new.blob_id == f"sha256:{HEX}" and new.code == b"j" and new.locator == "bafybeigdyrzt"
    for bad in (b"sha256:%s 12 p a b", b"sha256:%s 12 p \xff", b"sha256:%s 12 p ", b"sha256:%s x p loc"):
        assert parse_reference(b"cascade-blob " + bad % HEX.encode()) is None
    assert references([b"\xca\x5c\x01rc12345678" + b"cascade-blob sha256:%s 12 p loc" % HEX.encode()]) == {
        f"sha256:{HEX}"
    }
    assert is_locator("bafy-1:/x") and not is_locator("a b") and not is_locator("") and not is_locator("x" * 201)


def test_a_store_without_the_capability_writes_four_fields_and_one_with_it_five():
    plain = resolve_blobs(MemoryBlobStore())
    assert plain is not None and not isinstance(plain.store, BlobLocators)
    assert len(make_reference(plain.key, b"x" * 10, b"p").split(b" ")) == 4
    located = resolve_blobs(LocatedStore({}))
    assert located is not None and isinstance(located.store, BlobLocators)
    reference = parse_reference(make_reference(located.key, b"y" * 10, b"p"))
    assert reference is not None and reference.locator == "at-" + hashlib.sha256(b"y" * 10).hexdigest()[:12]
    for given in (None, "has space", "é"):  # none, or a malformed one (logged): four fields
        quiet = resolve_blobs(LocatedStore({}, locator=given))
        assert quiet is not None and len(make_reference(quiet.key, b"z" * 10, b"p").split(b" ")) == 4


@cs.task
def make(n: int) -> bytes:
    with open(os.environ["LOCATOR_TEST_LOG"], "a") as log:
        log.write("made\n")
    return bytes(range(256)) * n


def _made(tmp_path) -> int:
    log = tmp_path / "log"
    return len(log.read_text().split()) if log.exists() else 0


@pytest.fixture
def log_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCATOR_TEST_LOG", str(tmp_path / "log"))


def test_a_store_that_did_not_write_a_blob_reads_it_by_the_locator_in_its_reference(tmp_path, log_env):
    shelf: dict[str, bytes] = {}
    state = f"sqlite:///{tmp_path / 'state.db'}"
    first = LocatedStore(shelf)
    value = cs.run(make(100), state_backend=state, blob_store=first, run_id="r")
    other = LocatedStore(shelf)  # its own index is empty: found only by the locator
    assert cs.run(make(100), state_backend=state, blob_store=other, run_id="r") == value
    assert _made(tmp_path) == 1 and other.located_reads == 1 and list(other.list_blobs()) == []


def test_a_locator_naming_other_bytes_or_nothing_falls_back_to_the_id_then_recomputes(tmp_path, log_env):
    shelf: dict[str, bytes] = {}
    state = f"sqlite:///{tmp_path / 'state.db'}"
    store = LocatedStore(shelf)
    value = cs.run(make(100), state_backend=state, blob_store=store, run_id="r")
    (locator,) = shelf
    shelf[locator] = pickle.dumps(b"other bytes")  # the locator now names other bytes
    assert cs.run(make(100), state_backend=state, blob_store=store, run_id="r") == value
    assert _made(tmp_path) == 1  # they failed the SHA-256: read by the id from the store instead
    del shelf[locator]
    other = LocatedStore(shelf)  # nothing at the locator, nothing under the id: a missing blob
    assert cs.run(make(100), state_backend=state, blob_store=other, run_id="r") == value
    assert _made(tmp_path) == 2  # recomputed, not a crash


def test_a_located_read_that_fails_verification_and_has_no_fallback_is_a_blob_error():
    from cascade_core._store.blob_refs import dereference

    shelf: dict[str, bytes] = {}
    spec = resolve_blobs(LocatedStore(shelf))
    assert spec is not None
    reference = make_reference(spec.key, b"payload", b"p")
    spec.store.delete("sha256:" + hashlib.sha256(b"payload").hexdigest())
    (locator,) = shelf
    shelf[locator] = b"payloaX"
    with pytest.raises(BlobError, match="missing"):
        dereference(spec, "state/r/n", reference)
