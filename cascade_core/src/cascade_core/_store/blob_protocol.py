"""The blob-store contract (docs/blobs.md): content-addressed, write-once bytes by id.

A blob id is ``sha256:<64 hex digits>``, the SHA-256 of the blob's bytes. The engine computes
it and verifies every blob it reads, so a store only keeps bytes under their id.

Optional capabilities, each a Protocol below: ``BlobMarkers`` (``put_marker``,
``list_markers``, ``delete_marker``: a few small named objects beside the blobs, never listed
as blobs, in which runs record which state and cache stores write references into the store;
without them ``cascade blobs gc`` needs ``--force``) and ``TemporaryFiles``
(``list_temporary``, ``delete_temporary``: what a killed writer left, deleted by gc) and
``BlobLocators`` (``locate``, ``get_located``, ``exists_located``: a short locator of a blob the
store wrote, carried in the reference, by which any store of the same backend finds the blob
without its own index: an IPFS CID).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple, Protocol, runtime_checkable

BLOB_METHODS = ("put", "get", "exists", "delete", "list_blobs", "close")
_ID_RE = re.compile(r"sha256:[0-9a-f]{64}\Z")
_LOCATOR_RE = re.compile(r"[\x21-\x7e]{1,200}\Z")  # printable ASCII, no spaces


class BlobInfo(NamedTuple):
    """One stored blob: its id, size in bytes and modification time (Unix seconds)."""

    blob_id: str
    size: int
    mtime: float


@runtime_checkable
class BlobStore(Protocol):
    """Where large results live. Safe to call from several threads and processes at once."""

    def put(self, blob_id: str, data: bytes) -> bool:
        """Store ``data`` under ``blob_id`` unless a blob of that id exists; return whether it wrote.

        The write is atomic: no reader ever sees part of a blob under its id.
        """

    def get(self, blob_id: str) -> bytes | None:
        """The bytes stored under ``blob_id``, or None when there is none."""

    def exists(self, blob_id: str) -> bool:
        """Whether a blob of that id is stored."""

    def delete(self, blob_id: str) -> bool:
        """Delete a blob; return whether it existed."""

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob (for ``cascade blobs du`` and ``gc``)."""

    def close(self) -> None:
        """Release connections. Calling it twice is harmless."""


class TempInfo(NamedTuple):
    """A temporary file of a write in progress or killed: its path under the store's root, size, mtime."""

    name: str
    size: int
    mtime: float


@runtime_checkable
class BlobMarkers(Protocol):
    """Optional capability of a blob store: a few small named objects beside the blobs, never
    listed as blobs, in which runs record which stores write references into it (docs/blobs.md#writers)."""

    def put_marker(self, name: str, data: bytes) -> None:
        """Store or replace the marker ``name``."""

    def list_markers(self) -> Iterator[tuple[str, bytes]]:
        """Every marker: (name, data)."""

    def delete_marker(self, name: str) -> bool:
        """Delete a marker; return whether it existed."""


@runtime_checkable
class TemporaryFiles(Protocol):
    """Optional capability of a blob store that writes through temporary files (``file://``): what
    a killed writer left behind, for ``cascade blobs gc`` to delete once they are old."""

    def list_temporary(self) -> Iterator[TempInfo]:
        """Every temporary file: its name, size in bytes and modification time."""

    def delete_temporary(self, name: str) -> bool:
        """Delete one; return whether it existed."""


@runtime_checkable
class BlobLocators(Protocol):
    """Optional capability of a blob store: a locator of each blob it holds, which the reference
    carries (``cascade-blob sha256:<hex> <size> <p|j> <locator>``) and readers use first, so that
    a store configured elsewhere finds a blob it did not write (docs/blobs.md#references).
    Bytes read by locator are verified against the blob id like any others."""

    def locate(self, blob_id: str) -> str | None:
        """The locator of a blob this store holds (called right after ``put``), or None.
        A locator is printable ASCII without spaces, at most 200 characters (``is_locator``)."""

    def get_located(self, blob_id: str, locator: str) -> bytes | None:
        """The bytes at ``locator``, or None when nothing is found there (a wrong locator too)."""

    def exists_located(self, blob_id: str, locator: str) -> bool:
        """Whether ``get_located`` would find something at ``locator``, without reading it."""


def is_locator(text: object) -> bool:
    """Whether ``text`` is a well-formed locator: 1 to 200 printable ASCII characters, no spaces."""
    return isinstance(text, str) and _LOCATOR_RE.match(text) is not None


def is_blob_id(text: str) -> bool:
    """Whether ``text`` is a well-formed blob id (``sha256:`` and 64 lowercase hex digits)."""
    return isinstance(text, str) and _ID_RE.match(text) is not None


def blob_path(blob_id: str) -> str:
    """The relative path of a blob in a store's layout: ``sha256/ab/cd/<hex>``."""
    if not is_blob_id(blob_id):
        raise ValueError(f"not a blob id: {blob_id!r}")
    digest = blob_id[7:]
    return f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


def missing_blob_methods(obj: object) -> list[str]:
    return [name for name in BLOB_METHODS if not callable(getattr(obj, name, None))]
