"""The ``cascade.backends`` provider of ``ipfs://`` and ``ipfs+https://`` blob stores.

Cheap to import: httpx is imported when a store first talks to its node.
"""

from __future__ import annotations

from typing import Any

from cascade_core.plugin import hookimpl


class IpfsProvider:
    """Blob stores on an IPFS node, one per URI (``ipfs://HOST:PORT[/folder]?options``)."""

    @hookimpl
    def cascade_blob_store(self, uri: Any) -> Any:
        from .store import IpfsBlobStore

        return IpfsBlobStore.from_uri(uri)


provider = IpfsProvider()
