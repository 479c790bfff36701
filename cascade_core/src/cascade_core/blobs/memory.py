"""``memory://[name]``: blobs in this process's memory (tests, notebooks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from .._store.blob_protocol import BlobInfo, is_blob_id

_STORES: dict[str, MemoryBlobStore] = {}
_LOCK = threading.Lock()


class MemoryBlobStore:
    """A dict of blobs; ``memory://`` is one per process, ``memory://other`` another."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._blobs: dict[str, tuple[bytes, float]] = {}
        self._markers: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, blob_id: str, data: bytes) -> bool:
        if not is_blob_id(blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        with self._lock:
            if blob_id in self._blobs:
                self._blobs[blob_id] = (self._blobs[blob_id][0], time.time())
                return False
            self._blobs[blob_id] = (bytes(data), time.time())
            return True

    def get(self, blob_id: str) -> bytes | None:
        found = self._blobs.get(blob_id)
        return None if found is None else found[0]

    def exists(self, blob_id: str) -> bool:
        return blob_id in self._blobs

    def delete(self, blob_id: str) -> bool:
        with self._lock:
            return self._blobs.pop(blob_id, None) is not None

    def list_blobs(self) -> Iterator[BlobInfo]:
        with self._lock:
            items = list(self._blobs.items())
        for blob_id, (data, mtime) in items:
            yield BlobInfo(blob_id, len(data), mtime)

    def put_marker(self, name: str, data: bytes) -> None:
        self._markers[name] = bytes(data)

    def list_markers(self) -> Iterator[tuple[str, bytes]]:
        yield from sorted(self._markers.items())

    def delete_marker(self, name: str) -> bool:
        return self._markers.pop(name, None) is not None

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"MemoryBlobStore({self.name!r})"


def named_blob_store(name: str) -> MemoryBlobStore:
    with _LOCK:
        store = _STORES.get(name)
        if store is None:
            store = _STORES[name] = MemoryBlobStore(name)
        return store
