"""Large results by reference (docs/blobs.md).

With a blob store, an encoded result larger than the threshold is written once to the store
under its content id (``sha256:<hex>``); the state and the cache hold a small reference,
sealed like any payload under the serializer code ``b"r"``::

    cascade-blob sha256:<64 hex> <size> <p|j> [<locator>]

The locator (a ``BlobLocators`` store's, e.g. an IPFS CID) is written when the store gives one;
readers use it first and fall back to the blob id. References without one stay valid.

Stores are opened lazily, once per process and URI, so that executors whose workers live in
other processes write blobs themselves: what travels in a TaskCall is the URI, never an open
store. Every blob read is checked against its id before it is deserialized.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._errors import BackendUnavailableError, BlobError, CascadeError, IntegrityError
from .._masking import describe, mask_uri_text
from .blob_protocol import BlobLocators, is_blob_id, is_locator
from .serializers import REF_CODE, REF_PREFIX, is_reference

log = logging.getLogger("cascade")

DEFAULT_THRESHOLD = 1 << 20
BLOBS_ENV = "CASCADE_BLOBS"

_OPEN: dict[str, Any] = {}  # key (a URI with its secrets, or an object's key) -> open store
_LOCK = threading.Lock()
_LOCATORS: dict[str, tuple[Any, Any]] = {}  # key -> (store, its BlobLocators or None), resolved once


class Reference(NamedTuple):
    """A parsed reference: the blob's id, size, serializer code and optional locator."""

    blob_id: str
    size: int
    code: bytes
    locator: str | None = None


def locators(key: str, store: Any) -> BlobLocators | None:
    """The ``BlobLocators`` capability of ``store`` (opened under ``key``), or None; looked up once."""
    entry = _LOCATORS.get(key)
    if entry is None or entry[0] is not store:
        entry = _LOCATORS[key] = (store, store if isinstance(store, BlobLocators) else None)
    found: BlobLocators | None = entry[1]
    return found


@dataclass
class BlobSpec:
    """The blob store of a run: ``key`` travels to workers, ``label`` is what messages show."""

    key: str
    label: str
    threshold: int
    store: Any


def resolve_blobs(value: Any) -> BlobSpec | None:
    """Resolve a ``blob_store=`` argument: None, a URI (string or BackendURI), or a store object."""
    if value is None:
        return None
    from .._uri import BackendURI, size_bytes

    if isinstance(value, (str, BackendURI)):
        uri = value if isinstance(value, BackendURI) else BackendURI.parse(value)
        own = uri.replace(query=tuple((k, v) for k, v in uri.query if k == "threshold"))
        threshold = own.parse_options({"threshold": size_bytes}, defaults={"threshold": DEFAULT_THRESHOLD})["threshold"]
        plain = uri.replace(query=tuple((k, v) for k, v in uri.query if k != "threshold"))  # the store's options
        key = plain.render(mask=False)
        return BlobSpec(key, str(plain), threshold, open_store(key))
    from .._errors import DefinitionError
    from .blob_protocol import missing_blob_methods

    missing = missing_blob_methods(value)
    if missing or isinstance(value, type):
        raise DefinitionError(
            f"blob_store must be a URI such as 'file:///var/cascade/blobs' or a blob store; got "
            f"{type(value).__name__} (missing {', '.join(missing) or 'an instance'})"
        )
    key = f"object:{id(value)}"
    with _LOCK:
        _OPEN[key] = value
    threshold = getattr(value, "threshold", DEFAULT_THRESHOLD)
    return BlobSpec(key, repr(value), threshold, value)


def open_store(key: str) -> Any:
    """The store for ``key`` in this process, opened on first use."""
    store = _OPEN.get(key)
    if store is not None:
        return store
    with _LOCK:
        store = _OPEN.get(key)
        if store is None:
            if key.startswith("object:"):
                raise BackendUnavailableError(
                    "the run's blob store is an object of the driver's process: pass blob_store= a URI "
                    "so that workers in other processes can open it"
                )
            from .._plugins.registry import registry
            from .._uri import BackendURI

            store = _OPEN[key] = registry.blob_store(BackendURI.parse(key))
        return store


def make_reference(key: str, body: bytes, code: bytes) -> bytes:
    """Write ``body`` to the blob store of ``key`` (unless it is there) and return its reference,
    with the store's locator of the blob when it has the ``BlobLocators`` capability."""
    blob_id = "sha256:" + hashlib.sha256(body).hexdigest()
    store = open_store(key)
    caps = locators(key, store)
    try:
        store.put(blob_id, body)
        locator = caps.locate(blob_id) if caps is not None else None
    except CascadeError:
        raise
    except Exception as exc:
        raise BackendUnavailableError(
            f"blob store {mask_uri_text(key)} failed to store {blob_id}: {describe(exc)}"
        ) from exc
    reference = b"%s%s %d %s" % (REF_PREFIX, blob_id.encode(), len(body), code)
    if locator is None:
        return reference
    if not is_locator(locator):
        log.warning("blob store %s gave %s a malformed locator; the reference has none", mask_uri_text(key), blob_id)
        return reference
    return reference + b" " + locator.encode("ascii")


def check_reference(blobs: BlobSpec, codec: Any, key: str, body: bytes) -> None:
    """Check a stored blob reference without reading its blob (for executors whose workers read
    it): well formed, a serializer ``codec`` accepts, the blob present in ``blobs``."""
    parsed = parse_reference(body)
    if parsed is None or parsed[2] == REF_CODE:
        raise IntegrityError(f"stored value at {key!r} is a malformed blob reference", key=key)
    blob_id, _, code, locator = parsed
    if not codec.accepts(code):
        raise codec.refusal(key, code)
    caps = locators(blobs.key, blobs.store)
    if caps is not None and locator is not None and caps.exists_located(blob_id, locator):
        return
    if not blobs.store.exists(blob_id):
        raise BlobError(f"blob {blob_id} of {key!r} is missing from {blobs.label}", key=key, blob_id=blob_id)


def for_workers(blobs: BlobSpec | None) -> BlobSpec | None:
    """The blob store when workers in other processes can open it too (a URI), else None."""
    return None if blobs is None or blobs.key.startswith("object:") else blobs


def parse_reference(body: bytes) -> Reference | None:
    """(blob id, size, serializer code, locator or None) of a reference body, or None when it is not one."""
    if not body.startswith(REF_PREFIX):
        return None
    parts = body[len(REF_PREFIX) :].split(b" ")
    if len(parts) not in (3, 4) or not parts[1].isdigit() or len(parts[2]) != 1:
        return None
    blob_id = parts[0].decode("ascii", errors="replace")
    locator = parts[3].decode("ascii", errors="replace") if len(parts) == 4 else None
    if not is_blob_id(blob_id) or (locator is not None and not is_locator(locator)):
        return None
    return Reference(blob_id, int(parts[1]), parts[2], locator)


def dereference(spec: BlobSpec | None, storage_key: str, body: bytes) -> tuple[bytes, bytes]:
    """(serializer code, bytes) of the blob a verified reference names; BlobError otherwise."""
    parsed = parse_reference(body)
    if parsed is None or parsed[2] == REF_CODE:
        raise IntegrityError(f"stored value at {storage_key!r} is a malformed blob reference", key=storage_key)
    blob_id, size, code, locator = parsed
    if spec is None:
        raise BlobError(
            f"stored value at {storage_key!r} is in blob {blob_id}, but this run has no blob store: "
            "pass blob_store= (cascade run --blobs URI)",
            key=storage_key,
            blob_id=blob_id,
        )
    caps = locators(spec.key, spec.store)
    try:
        if caps is not None and locator is not None:
            data = caps.get_located(blob_id, locator)
            if data is not None and _verified(data, blob_id, size):
                return code, data
            log.debug("blob %s is not at its locator %s in %s; reading it by id", blob_id, locator, spec.label)
        data = spec.store.get(blob_id)
    except CascadeError:
        raise
    except Exception as exc:
        raise BackendUnavailableError(f"blob store {spec.label} failed to read {blob_id}: {describe(exc)}") from exc
    if data is None:
        raise BlobError(
            f"blob {blob_id} of {storage_key!r} is missing from {spec.label}", key=storage_key, blob_id=blob_id
        )
    if not _verified(data, blob_id, size):
        try:
            spec.store.delete(blob_id)  # corrupt: let the rerun write it again (it is write-once)
        except Exception:
            pass
        raise BlobError(
            f"blob {blob_id} of {storage_key!r} in {spec.label} fails its hash (corrupt or truncated); deleted it",
            key=storage_key,
            blob_id=blob_id,
        )
    return code, data


def _verified(data: bytes, blob_id: str, size: int) -> bool:
    return len(data) == size and hashlib.sha256(data).hexdigest() == blob_id[7:]


def code_of(body: bytes, code: bytes) -> bytes:
    """The serializer code to seal ``body`` under: ``b"r"`` for a reference, else ``code``."""
    return REF_CODE if is_reference(body) else code


def serialize_for_cache(ctx: Any, value: Any) -> tuple[bytes, bytes]:
    """(code, body) of ``value`` for a cache whose serializer differs from the state's."""
    return encode_for(ctx.cache_codec, ctx.blobs, value)


def encode_for(codec: Any, blobs: BlobSpec | None, value: Any) -> tuple[bytes, bytes]:
    """(code, body) of ``value`` serialized by ``codec``, by reference when over the blob threshold."""
    return spill(blobs, codec.code, codec.serialize(value))


def spill(blobs: BlobSpec | None, code: bytes, body: bytes) -> tuple[bytes, bytes]:
    """(code, body) with a body over the threshold written to the blob store and replaced by its
    reference; a reference, a small body, or no blob store: as they are."""
    if blobs is None or code == REF_CODE or len(body) <= blobs.threshold:
        return code, body
    return REF_CODE, make_reference(blobs.key, body, code)
