"""IpfsBlobStore: blobs on an IPFS node, by CID, indexed by their SHA-256 (docs/blobs.md#ipfs).

Each blob is added as a UnixFS file with raw leaves, CID version 1 and 1 MiB chunks, and
pinned (unless ``pin=false``): a blob of at most one chunk is then one raw block whose CID is
CIDv1(raw, sha2-256) of its bytes, computed here and checked equal to the node's answer; a
larger one is a balanced DAG of raw leaves whose root CID the node computes.

The engine names blobs by SHA-256 (``sha256:<hex>``), which is not the root CID of a
multi-block file, so the store keeps an index in the node's MFS (its own mutable files):
``<folder>/sha256/<2 hex>/<hex>`` holds one line, ``cascade-ipfs 1 <cid> <size> <mtime>``.
The index entry is written after the node has added (and pinned) every block, so a reader
finds a blob whole or not at all; a second write of a blob finds its entry and adds nothing
(it rewrites the entry's time when that is over a minute old: gc's grace period starts over).
Markers live in ``<folder>/markers/``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from typing import Any, Final, NamedTuple

from cascade_core.plugin import BackendError, BackendURI, BlobInfo, is_blob_id

from . import cid as cids
from .options import IpfsOptions, parse
from .rpc import NodeError, Rpc, multipart

CHUNK: Final = 1 << 20  # bytes per leaf: kubo's largest chunker size, and blocks that cross bitswap
MARKERS: Final = "markers"
IDENTITY: Final = {"Accept-Encoding": "identity"}  # blobs are pickles: compressing them costs more than it saves
REFRESH_AFTER: Final = 60.0  # seconds: a reused blob's entry written more recently is not rewritten
PEER_WAIT: Final = 2.0  # seconds a read waits for peers to have a one-block blob this node's index lacks
PEERS_TTL: Final = 5.0  # seconds between asks whether the node is connected to peers (swarm/peers)
_MISSING = ("does not exist", "not exist", "no such file", "file not found")


class Record(NamedTuple):
    """One index entry: the blob's CID, its size and when it was last written (Unix seconds)."""

    cid: str
    size: int
    mtime: float

    def line(self) -> bytes:
        return f"cascade-ipfs 1 {self.cid} {self.size} {self.mtime:.6f}\n".encode()

    @classmethod
    def from_line(cls, data: bytes) -> Record | None:
        parts = data.decode("ascii", "replace").split()
        if len(parts) != 5 or parts[:2] != ["cascade-ipfs", "1"] or not parts[3].isdigit():
            return None
        try:
            return cls(cids.canonical(parts[2]), int(parts[3]), float(parts[4]))
        except ValueError:
            return None


def _read_back(spool: Any) -> bytes:
    """The bytes of a spooled response in one allocation. The chunks went to a temporary file as
    they came, so a read holds the blob once in memory, not its chunks and their join (2x)."""
    spool.flush()
    spool.seek(0)
    return bytes(spool.read())


def _missing(error: NodeError) -> bool:
    return any(words in error.message.lower() for words in _MISSING)


class IpfsBlobStore:
    """Blobs on one IPFS node's RPC API. Picklable (the HTTP client is rebuilt in each process)."""

    # A put of an existing blob rewrites its index entry's time (gc's grace period starts over)
    # only when the entry is older than this: each MFS write leaves a few small blocks behind, and
    # a hot blob reused by every task would otherwise write one entry per use.
    refresh_after = REFRESH_AFTER

    def __init__(self, options: IpfsOptions) -> None:
        self.options = options
        self.rpc = Rpc(options)
        self._peers = False
        self._peers_checked = -PEERS_TTL - 1.0

    @classmethod
    def from_uri(cls, uri: BackendURI) -> IpfsBlobStore:
        return cls(parse(uri))

    # -- paths -------------------------------------------------------------------------------

    def _entry(self, blob_id: str) -> str:
        if not is_blob_id(blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        digest = blob_id[7:]
        return f"{self.options.folder}/sha256/{digest[:2]}/{digest}"

    def _marker(self, name: str) -> str:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a marker name: {name!r}")
        return f"{self.options.folder}/{MARKERS}/{name}"

    # -- the index ---------------------------------------------------------------------------

    def _read_file(self, path: str) -> bytes | None:
        try:
            with self.rpc.stream("files/read", {"arg": path}) as response:
                return response.read()
        except NodeError as exc:
            if _missing(exc):
                return None
            raise self.rpc.unavailable("files/read", exc.message) from None

    def _write_file(self, path: str, data: bytes) -> None:
        params = {"arg": path, "create": "true", "parents": "true", "truncate": "true"}
        try:
            self.rpc.json("files/write", params, **multipart(data, "data"))
        except NodeError as exc:
            raise self.rpc.unavailable("files/write", exc.message) from None

    def _remove_file(self, path: str) -> bool:
        try:
            self.rpc.json("files/rm", {"arg": path})
        except NodeError as exc:
            if _missing(exc):
                return False
            raise self.rpc.unavailable("files/rm", exc.message) from None
        return True

    def _list(self, path: str) -> list[dict[str, Any]]:
        try:
            answer = self.rpc.json("files/ls", {"arg": path, "long": "true"})
        except NodeError as exc:
            if _missing(exc):
                return []
            raise self.rpc.unavailable("files/ls", exc.message) from None
        entries = answer.get("Entries") if isinstance(answer, dict) else None
        return [e for e in entries or [] if isinstance(e, dict) and isinstance(e.get("Name"), str)]

    def record(self, blob_id: str) -> Record | None:
        """The index entry of ``blob_id`` (its CID, size and time), or None."""
        data = self._read_file(self._entry(blob_id))
        return Record.from_line(data) if data else None

    # -- the blob-store protocol -------------------------------------------------------------

    def put(self, blob_id: str, data: bytes) -> bool:
        self._writable("write " + blob_id)
        found = self.record(blob_id)
        if found is not None:  # write-once: no block is added; the entry's time refreshed when old
            now = time.time()
            if now - found.mtime >= self.refresh_after:
                self._write_file(self._entry(blob_id), found._replace(mtime=now).line())
            return False
        blob_cid = self._add(blob_id, data)
        self._write_file(self._entry(blob_id), Record(blob_cid, len(data), time.time()).line())
        return True

    def _add(self, blob_id: str, data: bytes) -> str:
        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            "chunker": f"size-{CHUNK}",
            "hash": "sha2-256",
            "pin": "true" if self.options.pin else "false",
            "progress": "false",
            "cid-base": "base32",
        }
        try:
            answer = self.rpc.json("add", params, **multipart(data))
        except NodeError as exc:
            raise self.rpc.unavailable("add", exc.message) from None
        last = answer[-1] if isinstance(answer, list) and answer else answer
        text = last.get("Hash") if isinstance(last, dict) else None
        if not isinstance(text, str):
            raise self.rpc.unavailable("add", "its answer names no CID")
        try:
            blob_cid = cids.canonical(text)
        except ValueError as exc:
            raise self.rpc.unavailable("add", str(exc)) from None
        if len(data) <= CHUNK:
            expected = cids.raw_cid(data)
            if blob_cid != expected:
                raise BackendError(
                    f"IPFS node of blob store {self.options.label} answered CID {blob_cid} for the one-block blob "
                    f"{blob_id}, whose CIDv1(raw, sha2-256) is {expected}: the node does not add with raw leaves "
                    "and CID version 1, so cascade-ipfs cannot use it; nothing was recorded"
                )
        return blob_cid

    def located(self, blob_id: str) -> Record | None:
        """Where to read ``blob_id``: its index entry, or, on a node connected to peers, the one
        block whose CID is CIDv1(raw, sha2-256) of the id, when a peer (or this node) has it:
        how a node reads a one-block blob that another node wrote. A multi-block blob's root
        CID cannot be derived from its SHA-256, so another node's multi-block blobs are not found."""
        found = self.record(blob_id)
        if found is not None or not self._has_peers():
            return found
        block = cids.raw_cid_of_digest(bytes.fromhex(blob_id[7:]))
        wait = min(self.options.timeout, PEER_WAIT)
        try:
            answer = self.rpc.json("block/stat", {"arg": block, "timeout": f"{wait:g}s"})
        except NodeError:
            return None  # no peer had it within the wait (or the node refused): missing
        size = answer.get("Size") if isinstance(answer, dict) else None
        return Record(block, int(size), 0.0) if isinstance(size, int) and size <= CHUNK else None

    def _has_peers(self) -> bool:
        now = time.monotonic()
        if now - self._peers_checked > PEERS_TTL:
            try:
                answer = self.rpc.json("swarm/peers")
                self._peers = bool(answer.get("Peers")) if isinstance(answer, dict) else False
            except NodeError:  # an offline node: "this command must be run in online mode"
                self._peers = False
            self._peers_checked = now
        return self._peers

    def get(self, blob_id: str) -> bytes | None:
        found = self.located(blob_id)
        if found is None:
            return None
        if self.options.gateway:
            return self._from_gateway(found)
        with tempfile.TemporaryFile() as spool:
            try:
                with self.rpc.stream("cat", {"arg": found.cid}, headers=IDENTITY) as response:
                    for chunk in response.iter_bytes():
                        spool.write(chunk)
            except NodeError as exc:
                if _missing(exc) or "not found" in exc.message.lower():
                    return None
                raise self.rpc.unavailable("cat", exc.message) from None
            return _read_back(spool)  # the engine checks its size and SHA-256 before it uses it

    def _from_gateway(self, found: Record) -> bytes | None:
        import httpx

        url = f"{self.options.gateway}/ipfs/{found.cid}"
        try:
            with self.rpc.client().stream("GET", url, headers=IDENTITY) as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise self.rpc.unavailable("gateway GET /ipfs/" + found.cid, f"HTTP {response.status_code}")
                with tempfile.TemporaryFile() as spool:
                    for chunk in response.iter_bytes():
                        spool.write(chunk)
                    return _read_back(spool)
        except httpx.HTTPError as exc:
            raise self.rpc.unavailable("gateway GET /ipfs/" + found.cid, f"{type(exc).__name__}: {exc}") from exc

    def exists(self, blob_id: str) -> bool:
        return self.located(blob_id) is not None

    def delete(self, blob_id: str) -> bool:
        """Forget a blob: its index entry is removed and its pin dropped (the node's own GC frees it)."""
        self._writable("delete " + blob_id)
        found = self.record(blob_id)
        if found is None:
            return False
        self._remove_file(self._entry(blob_id))
        if self.options.pin:
            self._unpin(found.cid)
        return True

    def _unpin(self, blob_cid: str) -> None:
        try:
            self.rpc.json("pin/rm", {"arg": blob_cid, "recursive": "true"})
        except NodeError as exc:
            if "not pinned" not in exc.message.lower():
                raise self.rpc.unavailable("pin/rm", exc.message) from None

    def pinned(self) -> set[str]:
        """The CIDs the node pins recursively (canonical form)."""
        try:
            answer = self.rpc.json("pin/ls", {"type": "recursive"})
        except NodeError as exc:
            raise self.rpc.unavailable("pin/ls", exc.message) from None
        keys = answer.get("Keys") if isinstance(answer, dict) else None
        found: set[str] = set()
        for text in keys or {}:
            try:
                found.add(cids.canonical(text))
            except ValueError:
                continue
        return found

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob of this store's index; with ``pin=true``, only those the node still pins."""
        pinned = self.pinned() if self.options.pin else None
        for folder in self._list(f"{self.options.folder}/sha256"):
            for entry in self._list(f"{self.options.folder}/sha256/{folder['Name']}"):
                blob_id = "sha256:" + entry["Name"]
                if not is_blob_id(blob_id):
                    continue
                found = self.record(blob_id)
                if found is not None and (pinned is None or found.cid in pinned):
                    yield BlobInfo(blob_id, found.size, found.mtime)

    # -- markers (docs/blobs.md#writers) -----------------------------------------------------

    def put_marker(self, name: str, data: bytes) -> None:
        """Store (or replace) a small marker in ``<folder>/markers/``."""
        self._writable("write marker " + name)
        self._write_file(self._marker(name), data)

    def list_markers(self) -> Iterator[tuple[str, bytes]]:
        found = []
        for entry in sorted(self._list(f"{self.options.folder}/{MARKERS}"), key=lambda e: e["Name"]):
            data = self._read_file(self._marker(entry["Name"]))
            if data is not None:
                found.append((entry["Name"], data))
        yield from found

    def delete_marker(self, name: str) -> bool:
        self._writable("delete marker " + name)
        return self._remove_file(self._marker(name))

    # -- the rest ----------------------------------------------------------------------------

    def _writable(self, action: str) -> None:
        if self.options.gateway:
            raise BackendError(
                f"blob store {self.options.label} reads through a gateway and is read-only: cannot {action}; "
                "drop gateway= on machines that write"
            )

    def describe(self) -> str:
        """What ``cascade backends check`` prints: the node's version and this store's settings."""
        answer = self.rpc.version()
        pin = "pinned" if self.options.pin else "not pinned"
        return (
            f"IPFS node version {answer.get('Version')} at {self.options.api}, index in MFS {self.options.folder}, "
            f"blobs {pin}" + (f", read through {self.options.gateway}" if self.options.gateway else "")
        )

    def close(self) -> None:
        self.rpc.close()

    def __repr__(self) -> str:
        return f"IpfsBlobStore({self.options.label!r})"
