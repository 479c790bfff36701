"""The ``cascade.backends`` provider of ``s3://``, ``gs://``, ``gcs://``, ``az://`` and ``abfs://`` blob stores.

Cheap to import: fsspec and its driver are imported when a store is opened.
"""

from __future__ import annotations

from typing import Any

from cascade_core.plugin import hookimpl


class FsspecProvider:
    """Blob stores on object storage, one per URI (``scheme://bucket/prefix?options``)."""

    @hookimpl
    def cascade_blob_store(self, uri: Any) -> Any:
        from .store import FsspecBlobStore

        return FsspecBlobStore.from_uri(uri)


provider = FsspecProvider()
