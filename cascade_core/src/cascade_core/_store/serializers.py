"""How results become bytes: the one table of serializers that the driver's Codec and the
workers' Encoding share, and the marker that starts a blob reference's body."""

from __future__ import annotations

import pickle
from typing import Any

# The byte that names a body's serializer in a sealed payload's header.
SERIALIZER_CODES = {"pickle": b"p", "json": b"j"}
REF_CODE = b"r"  # the body is a reference to a blob (blob_refs): it names the blob and the blob's serializer
REF_PREFIX = b"cascade-blob "  # a reference body starts with it; never the start of a pickle (b"\x80") or json


def dumps(serializer: str, value: Any) -> bytes:
    """``value`` serialized with ``serializer`` ("pickle" or "json"); raises what the serializer raises."""
    if serializer == "pickle":
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    import json

    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def is_reference(body: bytes) -> bool:
    """Whether ``body`` is a blob reference rather than a serialized value."""
    return body[:13] == REF_PREFIX
