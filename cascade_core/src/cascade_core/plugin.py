"""Everything a backend or executor plugin needs, in one public, stable module (docs/plugins.md,
docs/executors.md).

>>> from cascade_core.plugin import parse_uri, positive_float
>>> uri = parse_uri("yours://user:s3cret@host:7000/db?timeout=2.5")
>>> uri.parse_options({"timeout": positive_float})
{'timeout': 2.5}
>>> str(uri)
'yours://user:***@host:7000/db?timeout=2.5'

A plugin imports from here, never from ``cascade_core._*`` modules, which may change in any
release. Importing this module is as cheap as importing ``cascade_core``: ``hookimpl`` loads
pluggy on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import (
    BackendError,
    BackendUnavailableError,
    CascadeError,
    ConfigurationError,
    InvalidURIError,
    SerializationError,
)
from ._masking import mask_credentials, mask_uri_text
from ._plugins.call import Outcome, TaskCall, run_call, run_call_async
from ._plugins.executor import Executor
from ._store.blob_protocol import BlobInfo, BlobMarkers, BlobStore, TemporaryFiles, blob_path, is_blob_id
from ._store.leases import LeaseTableMixin, supports_leases
from ._store.limits import LimitRow, LimitRules, LimitStore, LimitStoreMixin
from ._store.protocols import (
    CacheBackend,
    CacheBackendBase,
    CacheCatalog,
    EntryCount,
    LeaseHolders,
    Leases,
    RunCatalog,
    StateBackend,
    StateBackendBase,
    StateBackendFactory,
    TaskRecords,
)
from ._uri import (
    MASK,
    MAX_SECONDS,
    MAX_TIMEOUT,
    BackendURI,
    at_most,
    boolean,
    checked_ttl,
    choice,
    is_sensitive,
    mask_text,
    non_negative_int,
    positive_float,
    positive_int,
    size_bytes,
    timeout_seconds,
)

if TYPE_CHECKING:
    import pluggy

    hookimpl: pluggy.HookimplMarker

__all__ = [
    "BackendError",
    "BackendURI",
    "BackendUnavailableError",
    "BlobInfo",
    "BlobMarkers",
    "BlobStore",
    "CacheBackend",
    "CacheBackendBase",
    "CacheCatalog",
    "CascadeError",
    "ConfigurationError",
    "EntryCount",
    "Executor",
    "InvalidURIError",
    "LeaseHolders",
    "LeaseTableMixin",
    "Leases",
    "LimitRow",
    "LimitRules",
    "LimitStore",
    "LimitStoreMixin",
    "MASK",
    "MAX_SECONDS",
    "MAX_TIMEOUT",
    "Outcome",
    "RunCatalog",
    "SerializationError",
    "StateBackend",
    "StateBackendBase",
    "StateBackendFactory",
    "TaskCall",
    "TaskRecords",
    "TemporaryFiles",
    "at_most",
    "blob_path",
    "boolean",
    "checked_ttl",
    "choice",
    "hookimpl",
    "is_blob_id",
    "is_sensitive",
    "mask_credentials",
    "mask_text",
    "mask_uri_text",
    "non_negative_int",
    "parse_uri",
    "positive_float",
    "positive_int",
    "run_call",
    "run_call_async",
    "size_bytes",
    "supports_leases",
    "timeout_seconds",
]


def parse_uri(uri: str | BackendURI) -> BackendURI:
    """Parse ``scheme://[user[:password]@]host[:port][/path][?key=value&...]`` (a BackendURI is returned as is).

    Raises InvalidURIError, with any password masked, when the text is not such a URI.
    """
    return uri if isinstance(uri, BackendURI) else BackendURI.parse(uri)


def __getattr__(name: str) -> Any:
    if name == "hookimpl":  # the marker for provider hooks; imports pluggy, so only on first use
        import cascade_core

        marker = cascade_core.hookimpl
        globals()["hookimpl"] = marker
        return marker
    raise AttributeError(f"module 'cascade_core.plugin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
