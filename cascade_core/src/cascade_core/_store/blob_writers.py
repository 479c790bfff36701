"""Which state and cache stores write references into a blob store (docs/blobs.md#writers).

Before a run stores anything, it records its state and cache stores in its blob store: one
small marker per store, named by its role and a hash of its URI with the secrets masked, and
holding that masked URI. ``cascade blobs gc`` reads the markers and refuses to run unless it
was given every recorded store: a gc pointed at the wrong state finds no reference and would
otherwise delete live blobs. Markers go through the optional BlobStore methods
``put_marker``, ``list_markers`` and ``delete_marker``; a store without them records nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from .._masking import describe
from .blob_protocol import BlobMarkers

log = logging.getLogger("cascade")

ROLES = ("state", "cache")

# store -> names of the markers this process wrote to it: one write per process, not per run
_RECORDED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Writer:
    """A state or cache store that writes references: its role and canonical masked URI."""

    role: str
    uri: str

    @property
    def name(self) -> str:
        """The marker name: role and a hash of the masked URI (never of a secret)."""
        return f"{self.role}-{hashlib.sha256(self.uri.encode()).hexdigest()[:32]}"

    def data(self) -> bytes:
        return json.dumps({"role": self.role, "uri": self.uri}).encode()

    def __str__(self) -> str:
        return f"{self.role} {self.uri}"


def writer(role: str, uri: Any) -> Writer | None:
    """The writer a state or cache URI names; None for ``memory://``, which lives in its process.

    A sqlite URI is named by its absolute file path, so that ``sqlite:///.cascade.db`` run from
    two directories are two stores; other URIs by their masked text, options sorted."""
    if uri.scheme == "memory":
        return None
    if uri.scheme == "sqlite":
        from ..backends.sqlite import path_from_uri

        return Writer(role, "sqlite:///" + path_from_uri(uri))  # sqlite:////absolute/path.db
    return Writer(role, str(uri.replace(query=tuple(sorted(uri.query)))))


def run_writers(state_arg: Any, cache_arg: Any) -> list[Writer]:
    """The writers of a run's ``state_backend=`` and ``cache_backend=`` arguments (objects record nothing)."""
    from .._uri import BackendURI

    found = []
    for role, value in zip(ROLES, (state_arg, cache_arg)):
        uri = BackendURI.parse(value) if isinstance(value, str) else value
        named = writer(role, uri) if isinstance(uri, BackendURI) else None  # None: memory://, the default
        if named is not None:
            found.append(named)
    return found


def supports_markers(store: Any) -> bool:
    return isinstance(store, BlobMarkers)


def record(store: Any, label: str, writers: list[Writer]) -> None:
    """Record ``writers`` in ``store`` once per process (a warning, not a failure, when it cannot)."""
    if not writers or not supports_markers(store):
        return
    try:
        with _LOCK:
            done = _RECORDED.setdefault(store, set())
    except TypeError:  # a store that takes no weak reference: recorded on every run
        done = set()
    for found in writers:
        if found.name in done:
            continue
        try:
            store.put_marker(found.name, found.data())
        except Exception as exc:
            log.warning(
                "blob store %s could not record that %s writes references into it (%s); "
                "cascade blobs gc will not know to ask for it",
                label,
                found,
                describe(exc),
            )
            continue
        done.add(found.name)


def recorded(store: Any) -> dict[str, Writer] | None:
    """The writers recorded in ``store`` by marker name; None when the store keeps no markers."""
    if not supports_markers(store):
        return None
    found = {}
    for name, data in store.list_markers():
        role = name.partition("-")[0]
        if role not in ROLES:
            continue  # a marker of something else
        try:
            fields = json.loads(data)
            found[name] = Writer(str(fields["role"]), str(fields["uri"]))
        except (ValueError, KeyError, TypeError):
            found[name] = Writer(role, f"(unreadable marker {name})")
    return found


def forget(store: Any, names: list[str]) -> None:
    """Delete the markers of ``names`` (gc --force, for stores it was told to ignore)."""
    for name in names:
        store.delete_marker(name)
