"""A content-addressed blob store on any fsspec filesystem: ``<root>/sha256/ab/cd/<hex>``.

Object stores make a single upload visible only when it is complete (S3, GCS and Azure
alike, multipart uploads included), so a blob is written in place: no reader ever sees part
of one, and a driver killed mid-upload leaves nothing under the blob's name.

A write that finds its blob there already refreshes the blob's modification time, so that
gc's grace period starts over (docs/blobs.md#gc): on S3 by copying the object onto itself,
server-side, at most once a minute per blob.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterator
from typing import Any, Final

from cascade_core.plugin import (
    BackendError,
    BackendUnavailableError,
    BackendURI,
    BlobInfo,
    InvalidURIError,
    blob_path,
    boolean,
    is_blob_id,
    positive_float,
)

from .drivers import DRIVERS, filesystem_class, known_options

_BOOLEAN_OPTIONS = ("anon", "use_ssl", "requester_pays")
# Options that cascade-fsspec turns into driver options itself; on s3, "profile" goes to the session.
_OWN_OPTIONS = {"s3": ("region", "timeout", "profile")}
MARKERS = "markers"  # <root>/markers/<name>: which stores write references here (never listed as blobs)
REFRESH_AFTER: Final = 60.0  # seconds: a reused blob modified more recently is not touched again
COPY_LIMIT: Final = 5 * 2**30  # S3's largest CopyObject; bigger blobs are copied part by part

log = logging.getLogger("cascade")


def storage_options(uri: BackendURI, known: frozenset[str] | None = None) -> dict[str, Any]:
    """fsspec storage options from the URI: userinfo and query (some converted, the rest as given).

    With ``known`` (the driver's option names), any other option is an InvalidURIError naming them."""
    options: dict[str, Any] = {}
    if known is not None:
        accepted = known | set(_OWN_OPTIONS.get(uri.scheme, ()))
        for key, _ in uri.query:
            if key not in accepted:
                raise InvalidURIError(
                    f"unknown option {key!r} in {uri}: {uri.scheme}:// blob stores take "
                    f"{', '.join(sorted(accepted | {'threshold'}))}",
                    key=key,
                )
    for key, value in uri.query:
        if key in _BOOLEAN_OPTIONS:
            try:
                options[key] = boolean(value)
            except ValueError as exc:
                raise InvalidURIError(f"invalid value {value!r} for option {key!r} in {uri}: {exc}", key=key) from None
        else:
            options[key] = value
    if uri.scheme == "s3":
        if uri.username:
            options["key"] = uri.username
        if uri.password:
            options["secret"] = uri.password
        region = options.pop("region", None)
        if region:
            options.setdefault("client_kwargs", {})["region_name"] = region
        timeout = options.pop("timeout", None)
        if timeout is not None:
            try:
                seconds = positive_float(timeout)
            except ValueError as exc:
                raise InvalidURIError(f"invalid value {timeout!r} for option 'timeout' in {uri}: {exc}", key="timeout")
            options["config_kwargs"] = {
                "connect_timeout": seconds,
                "read_timeout": seconds,
                "retries": {"max_attempts": 2},
            }
    elif uri.username or uri.password:
        raise InvalidURIError(f"{uri.scheme}:// URI {uri} takes no user or password: pass credentials as options")
    options.setdefault("use_listings_cache", False)  # other machines write blobs too
    return options


class FsspecBlobStore:
    """Blobs under ``root`` on an fsspec filesystem. Picklable: the filesystem is rebuilt on demand."""

    refresh_after = REFRESH_AFTER  # a put refreshes only a reused blob older than this (docs/blobs.md)

    def __init__(self, protocol: str, root: str, options: dict[str, Any], label: str) -> None:
        self.protocol = protocol
        self.root = root.strip("/")
        self.options = options
        self.label = label
        self._fs: Any = None

    @classmethod
    def from_uri(cls, uri: BackendURI) -> FsspecBlobStore:
        if uri.scheme not in DRIVERS:
            raise InvalidURIError(f"cascade-fsspec does not serve {uri.scheme}:// (it serves {', '.join(DRIVERS)})")
        if not uri.host:
            raise InvalidURIError(f"{uri.scheme}:// URI {uri} names no bucket: use {uri.scheme}://bucket/prefix")
        protocol = DRIVERS[uri.scheme][0]
        known = known_options(filesystem_class(uri.scheme))  # the driver checked and imported
        store = cls(protocol, uri.host + uri.path, storage_options(uri, known), str(uri))
        _ = store.fs  # the driver is there and the options are accepted: fail now, not at the first blob
        return store

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            scheme = self.label.partition("://")[0]
            if scheme in DRIVERS:
                filesystem_class(scheme)  # in a worker too: the driver installed, and recent enough
            try:
                self._fs = fsspec.filesystem(self.protocol, **self.options)
            except (TypeError, ValueError) as exc:
                raise InvalidURIError(f"blob store {self.label} refused its options: {exc}") from None
        return self._fs

    def _path(self, blob_id: str) -> str:
        return f"{self.root}/{blob_path(blob_id)}"

    def _failed(self, action: str, exc: Exception) -> BackendUnavailableError:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return BackendUnavailableError(f"blob store {self.label} failed to {action}: {type(exc).__name__}: {reason}")

    def put(self, blob_id: str, data: bytes) -> bool:
        path = self._path(blob_id)
        try:
            try:
                found = self.fs.info(path)
            except FileNotFoundError:
                found = None
            if found is not None and found.get("type") != "directory":
                self._refresh(blob_id, path, found)
                return False
            self.fs.pipe_file(path, data)
        except (BackendError, InvalidURIError):
            raise
        except Exception as exc:
            raise self._failed(f"write {blob_id}", exc) from exc
        return True

    def _refresh(self, blob_id: str, path: str, info: dict[str, Any]) -> None:
        """Make a reused blob's modification time now (gc's grace period starts over), as ``file://``
        does with ``os.utime``. S3 has no touch: the object is copied onto itself server-side
        (CopyObject with new metadata, one request; a multipart copy over 5 GiB), at most once per
        ``REFRESH_AFTER``. Other protocols are left as they are (docs/blobs.md#gc)."""
        if self.protocol != "s3" or time.time() - _mtime(info) < REFRESH_AFTER:
            return
        try:
            if int(info.get("size") or 0) > COPY_LIMIT:
                self.fs.cp_file(path, path)
            else:
                bucket, key, _ = self.fs.split_path(path)
                self.fs.call_s3(
                    "copy_object",
                    Bucket=bucket,
                    Key=key,
                    CopySource={"Bucket": bucket, "Key": key},
                    MetadataDirective="REPLACE",  # S3 refuses a copy onto itself that changes nothing
                    Metadata={"cascade-used": str(int(time.time()))},
                )
        except Exception as exc:  # the blob is there: only gc's grace period is weaker for it
            log.warning(
                "blob store %s could not refresh the time of reused blob %s (%s: %s); gc's grace period for it "
                "counts from its last write",
                self.label,
                blob_id,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )

    def get(self, blob_id: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(self._path(blob_id)))
        except FileNotFoundError:
            return None
        except (BackendError, InvalidURIError):
            raise
        except Exception as exc:
            raise self._failed(f"read {blob_id}", exc) from exc

    def exists(self, blob_id: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(blob_id)))
        except Exception as exc:
            raise self._failed(f"look up {blob_id}", exc) from exc

    def delete(self, blob_id: str) -> bool:
        return self._remove(self._path(blob_id), blob_id)

    def _remove(self, path: str, what: str) -> bool:
        try:
            if not self.fs.exists(path):
                return False
            self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._failed(f"delete {what}", exc) from exc
        return True

    def list_blobs(self) -> Iterator[BlobInfo]:
        top = f"{self.root}/sha256"
        try:
            found = self.fs.find(top, detail=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._failed("list blobs", exc) from exc
        for path, info in found.items():
            blob_id = "sha256:" + path.rsplit("/", 1)[-1]
            if is_blob_id(blob_id):
                yield BlobInfo(blob_id, int(info.get("size") or 0), _mtime(info))

    def put_marker(self, name: str, data: bytes) -> None:
        """Store (or replace) a small marker beside the blobs (docs/blobs.md#writers)."""
        try:
            self.fs.pipe_file(f"{self.root}/{MARKERS}/{name}", data)
        except (BackendError, InvalidURIError):
            raise
        except Exception as exc:
            raise self._failed(f"write marker {name}", exc) from exc

    def list_markers(self) -> Iterator[tuple[str, bytes]]:
        """Every marker: (name, data)."""
        top = f"{self.root}/{MARKERS}"
        try:
            paths = sorted(self.fs.find(top))
            found = [(path.rsplit("/", 1)[-1], bytes(self.fs.cat_file(path))) for path in paths]
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._failed("list markers", exc) from exc
        yield from found

    def delete_marker(self, name: str) -> bool:
        return self._remove(f"{self.root}/{MARKERS}/{name}", f"marker {name}")

    def close(self) -> None:
        pass

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None}  # filesystem objects often do not pickle

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.label!r})"


def _mtime(info: dict[str, Any]) -> float:
    """Modification time of a listing entry, whatever the driver calls it (0 when it says nothing)."""
    for name in ("LastModified", "last_modified", "mtime", "updated", "created"):
        value = info.get(name)
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0
