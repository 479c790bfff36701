"""The provider of ``file://`` blob stores (``memory://`` blob stores come with the memory
provider in backends/builtin.py), registered through the ``cascade.backends`` entry points."""

from __future__ import annotations

from typing import Any

from .._plugins.events import hookimpl  # type: ignore[attr-defined]  # imports pluggy: fine, a provider loads on use


class FileProvider:
    """``file:///absolute/path``, ``file://relative/path``: a folder of blobs."""

    @hookimpl
    def cascade_blob_store(self, uri: Any) -> Any:
        from .._errors import InvalidURIError
        from .file import FileBlobStore

        uri.parse_options({})
        root = (uri.host or "") + uri.path
        if not root:
            raise InvalidURIError(
                f"file:// URI {uri} names no folder: use file:///absolute/path or file://relative/path"
            )
        return FileBlobStore(root)


file = FileProvider()
