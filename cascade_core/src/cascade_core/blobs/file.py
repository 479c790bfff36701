"""``file:///path``: blobs in a folder, ``<root>/sha256/ab/cd/<hex>``, written through a
temporary file and a rename so that no reader ever sees a partial blob."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from .._store.blob_protocol import BlobInfo, TempInfo, blob_path, is_blob_id

TMP_SUFFIX = ".tmp"
MARKERS = "markers"  # <root>/markers/<name>: which stores write references here (gc and du never list it)


class FileBlobStore:
    """A folder of blobs, safe for several threads and processes on one or more machines."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def _path(self, blob_id: str) -> str:
        return os.path.join(self.root, blob_path(blob_id))

    def put(self, blob_id: str, data: bytes) -> bool:
        path = self._path(blob_id)
        if os.path.exists(path):
            try:
                os.utime(path)  # used again: gc's grace period starts over (docs/blobs.md#gc)
            except OSError:
                pass
            return False
        _write_atomically(path, data)  # a concurrent writer of the same id writes the same bytes
        return True

    def get(self, blob_id: str) -> bytes | None:
        try:
            with open(self._path(blob_id), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def exists(self, blob_id: str) -> bool:
        return os.path.exists(self._path(blob_id))

    def delete(self, blob_id: str) -> bool:
        try:
            os.unlink(self._path(blob_id))
        except FileNotFoundError:
            return False
        return True

    def list_blobs(self) -> Iterator[BlobInfo]:
        top = os.path.join(self.root, "sha256")
        for folder, _, files in os.walk(top):
            for name in files:
                blob_id = "sha256:" + name
                if not is_blob_id(blob_id):
                    continue  # temporary files of writes in progress
                try:
                    info = os.stat(os.path.join(folder, name))
                except FileNotFoundError:
                    continue
                yield BlobInfo(blob_id, info.st_size, info.st_mtime)

    def list_temporary(self) -> Iterator[TempInfo]:
        """The temporary files of writes under way or killed (``<hex>.<pid>.<n>.tmp``), for gc."""
        for folder, _, files in os.walk(os.path.join(self.root, "sha256")):
            for name in files:
                if not name.endswith(TMP_SUFFIX):
                    continue
                path = os.path.join(folder, name)
                try:
                    info = os.stat(path)
                except FileNotFoundError:
                    continue  # renamed into place (or deleted) meanwhile
                yield TempInfo(os.path.relpath(path, self.root), info.st_size, info.st_mtime)

    def delete_temporary(self, name: str) -> bool:
        """Delete a temporary file that :meth:`list_temporary` named; return whether it existed."""
        top = os.path.join(self.root, "sha256")
        path = os.path.normpath(os.path.join(self.root, name))
        if not name.endswith(TMP_SUFFIX) or os.path.commonpath([path, top]) != top:
            raise ValueError(f"not a temporary file of {self.root}: {name!r}")
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def _marker_path(self, name: str) -> str:
        if not name or name.startswith(".") or os.sep in name or name.endswith(TMP_SUFFIX):
            raise ValueError(f"not a marker name: {name!r}")
        return os.path.join(self.root, MARKERS, name)

    def put_marker(self, name: str, data: bytes) -> None:
        """Store (or replace) a small marker, atomically (docs/blobs.md#writers)."""
        _write_atomically(self._marker_path(name), data)

    def list_markers(self) -> Iterator[tuple[str, bytes]]:
        """Every marker: (name, data)."""
        try:
            names = sorted(os.listdir(os.path.join(self.root, MARKERS)))
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(".") or name.endswith(TMP_SUFFIX):
                continue
            try:
                with open(self._marker_path(name), "rb") as handle:
                    yield name, handle.read()
            except FileNotFoundError:
                continue

    def delete_marker(self, name: str) -> bool:
        try:
            os.unlink(self._marker_path(name))
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"FileBlobStore({self.root!r})"


def _write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{time.monotonic_ns()}{TMP_SUFFIX}"
    try:
        # No fsync: a blob torn by a power loss fails its hash when read, is deleted and
        # written again by the rerun (docs/blobs.md), so durability costs no extra write time.
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)  # atomic
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
