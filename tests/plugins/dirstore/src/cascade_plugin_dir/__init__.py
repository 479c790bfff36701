"""``dir:///relative/dir``, ``dir:////absolute/dir``: state and cache as files in a folder.

Written from docs/plugins.md and docs/backends.md alone, importing only ``cascade_core.plugin``,
to show that they suffice; tests/core/test_kit_usage.py runs the conformance kit against it.

Every name (run id, node id, cache key) may be any string, so a file is named by the SHA-256
of its name and holds the name itself: ``<4-byte name length><name><8-byte expiry><payload>``.
Writes go to a temporary file renamed into place, so a reader never sees half a file; the
read-modify-write of run metadata is serialized by a lock file (``fcntl.flock``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import struct
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone

from cascade_core.plugin import (
    BackendUnavailableError,
    BackendURI,
    CacheBackendBase,
    InvalidURIError,
    StateBackendBase,
    checked_ttl,
    hookimpl,
    positive_float,
)

OPTIONS = {"ttl": positive_float}
_LOCAL = threading.Lock()  # flock is per open file description, not per thread: threads take this too


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _pack(name: str, payload: bytes, expires: float = math.inf) -> bytes:
    raw = name.encode("utf-8", "surrogatepass")
    return struct.pack(">I", len(raw)) + raw + struct.pack(">d", expires) + payload


def _unpack(data: bytes) -> tuple[str, float, bytes]:
    (size,) = struct.unpack_from(">I", data)
    name = data[4 : 4 + size].decode("utf-8", "surrogatepass")
    (expires,) = struct.unpack_from(">d", data, 4 + size)
    return name, expires, data[12 + size :]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        return None


def _write(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _entries(directory: str) -> Iterator[tuple[str, str, float, bytes]]:
    """(path, name, expiry, payload) of every file in ``directory``."""
    try:
        files = [entry for entry in os.listdir(directory) if not entry.startswith(".")]
    except FileNotFoundError:
        return
    for file_name in files:
        path = os.path.join(directory, file_name)
        data = _read(path)
        if data is not None:
            yield (path, *_unpack(data))


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class _Folder:
    """The root folder of one URI, checked when opened."""

    def __init__(self, uri: BackendURI) -> None:
        if uri.host or uri.port is not None or uri.username is not None:
            raise InvalidURIError(
                f"a dir:// URI has no host: write 'dir:///{uri.host or ''}{uri.path}' (relative) "
                f"or 'dir:////absolute/path', not {str(uri)!r}"
            )
        if not uri.database:
            raise InvalidURIError(f"{str(uri)!r} names no folder: write 'dir:///relative/dir' or 'dir:////abs/dir'")
        self.root = os.path.abspath(uri.database)
        parent = os.path.dirname(self.root)
        if not os.path.isdir(parent):
            raise BackendUnavailableError(f"folder {parent} of {uri} does not exist: create it first")
        os.makedirs(self.root, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        with _LOCAL, open(os.path.join(self.root, ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class DirStateStore:
    """Every run under ``<root>/runs/<sha256 of run id>/``; call it with a run id (RunCatalog too)."""

    def __init__(self, uri: BackendURI) -> None:
        self.folder = _Folder(uri)
        self.runs = os.path.join(self.folder.root, "runs")

    def __call__(self, run_id: str) -> DirStateBackend:
        return DirStateBackend(run_id, self)

    def run_dir(self, run_id: str) -> str:
        return os.path.join(self.runs, _digest(run_id))

    def list_runs(self) -> list[dict[str, str]]:
        found = []
        for entry in sorted(os.listdir(self.runs)) if os.path.isdir(self.runs) else []:
            meta = _read(os.path.join(self.runs, entry, "meta"))
            if meta is None:
                continue
            info = json.loads(_unpack(meta)[2])
            results = len(list(_entries(os.path.join(self.runs, entry, "results"))))
            found.append({**info, "run_id": _unpack(meta)[0], "results": str(results)})
        return found

    def delete_run(self, run_id: str) -> bool:
        directory = self.run_dir(run_id)
        with self.folder.locked():
            existed = _remove(os.path.join(directory, "meta"))
            for sub in ("results", "skipped"):
                for path, *_ in _entries(os.path.join(directory, sub)):
                    existed = _remove(path) or existed
            return existed

    def close(self) -> None:
        pass


class DirStateBackend(StateBackendBase):
    def __init__(self, run_id: str, store: DirStateStore) -> None:
        self.run_id = run_id
        self._store = store
        self._dir = store.run_dir(run_id)

    def _touch(self, info: Mapping[str, str] | None = None) -> None:
        """Merge ``info`` into the run's metadata and stamp ``created``/``updated``."""
        meta_path = os.path.join(self._dir, "meta")
        with self._store.folder.locked():
            stored = _read(meta_path)
            meta = json.loads(_unpack(stored)[2]) if stored else {}
            meta.update({key: str(value) for key, value in (info or {}).items() if key not in ("created", "updated")})
            now = _now()
            meta.setdefault("created", now)
            meta["updated"] = now
            _write(meta_path, _pack(self.run_id, json.dumps(meta).encode()))

    def _put(self, sub: str, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        for name, payload in items.items():
            _write(os.path.join(self._dir, sub, _digest(name)), _pack(name, bytes(payload)))
        self._touch()

    def put_results(self, results: Mapping[str, bytes]) -> None:
        self._put("results", results)

    def get_results(self, node_ids: Iterable[str]) -> dict[str, bytes]:
        found = {}
        for node_id in dict.fromkeys(node_ids):
            data = _read(os.path.join(self._dir, "results", _digest(node_id)))
            if data is not None:
                found[node_id] = _unpack(data)[2]
        return found

    def result_ids(self) -> set[str]:
        return {name for _, name, _, _ in _entries(os.path.join(self._dir, "results"))}

    def mark_skipped(self, reasons: Mapping[str, str]) -> None:
        self._put("skipped", {node_id: reason.encode() for node_id, reason in reasons.items()})

    def get_skip_reasons(self) -> dict[str, str]:
        return {name: payload.decode() for _, name, _, payload in _entries(os.path.join(self._dir, "skipped"))}

    def set_run_info(self, info: Mapping[str, str]) -> None:
        if info:
            self._touch(info)

    def get_run_info(self) -> dict[str, str]:
        data = _read(os.path.join(self._dir, "meta"))
        return json.loads(_unpack(data)[2]) if data else {}

    def close(self) -> None:
        pass


class DirCache(CacheBackendBase):
    """Cache entries as ``<root>/cache/<sha256 of key>``; an expired entry counts as gone (CacheCatalog too)."""

    def __init__(self, uri: BackendURI, ttl: float | None = None) -> None:
        self._folder = _Folder(uri)
        self._dir = os.path.join(self._folder.root, "cache")
        self.default_ttl = ttl

    def _path(self, key: str) -> str:
        return os.path.join(self._dir, _digest(key))

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        now = time.time()
        found = {}
        for key in dict.fromkeys(keys):
            data = _read(self._path(key))
            if data is not None:
                _, expires, payload = _unpack(data)
                if expires > now:
                    found[key] = payload
        return found

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        ttl = self.default_ttl if ttl is None else checked_ttl(ttl)
        if ttl is not None and ttl <= 0:  # expired on arrival: no older value survives either
            self.delete_many(items)
            return
        expires = math.inf if ttl is None else time.time() + ttl
        for key, value in items.items():
            _write(self._path(key), _pack(key, bytes(value), expires))

    def delete_many(self, keys: Iterable[str]) -> int:
        now = time.time()
        count = 0
        for key in dict.fromkeys(keys):
            data = _read(self._path(key))
            if data is not None and _remove(self._path(key)):
                count += _unpack(data)[1] > now
        return count

    def clear(self, prefix: str = "") -> int:
        now = time.time()
        return sum(
            _remove(path) and expires > now for path, name, expires, _ in _entries(self._dir) if name.startswith(prefix)
        )

    def close(self) -> None:
        pass


class DirProvider:
    @hookimpl
    def cascade_state_backend(self, uri: BackendURI):
        uri.parse_options(OPTIONS)  # ttl is the cache's; accepted so that one URI serves both
        return DirStateStore(uri)

    @hookimpl
    def cascade_cache_backend(self, uri: BackendURI):
        return DirCache(uri, **uri.parse_options(OPTIONS))


provider = DirProvider()
