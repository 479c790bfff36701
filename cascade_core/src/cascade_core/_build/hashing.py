"""Deterministic hashing of input values, the same in every process.

``hash()`` is salted per process and ``pickle`` output of sets varies with it, so values
are encoded by type first (sets and dict keys sorted by their own encodings) and only
objects Cascade does not know fall back to pickle.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from typing import Any


class UnhashableInput(TypeError):
    """A value that cannot be encoded for hashing (raised inside; callers name the task)."""


def digest(data: bytes) -> str:
    """A 32-hex-char digest; wide enough that collisions do not happen by chance."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def encode(value: Any) -> bytes:
    """Deterministic bytes for a value. Raises UnhashableInput."""
    kind = type(value)
    # Fast paths for the common scalars.
    if kind is str:
        raw = value.encode("utf-8", "surrogatepass")
        return b"s" + struct.pack(">Q", len(raw)) + raw
    if kind is int:
        return b"i" + str(value).encode() + b";"
    if value is None:
        return b"N"
    if kind is bool:
        return b"T" if value else b"F"
    if kind is float:
        return b"f" + struct.pack(">d", value)
    if kind is bytes:
        return b"b" + struct.pack(">Q", len(value)) + value
    if kind in (list, tuple):
        return (b"l" if kind is list else b"t") + struct.pack(">Q", len(value)) + b"".join(map(encode, value))
    if kind is dict:
        items = (
            sorted(encode(k) + encode(v) for k, v in value.items())
            if _mixed_keys(value)
            else [encode(k) + encode(v) for k, v in sorted(value.items(), key=_sort_key)]
        )
        return b"d" + struct.pack(">Q", len(items)) + b"".join(items)
    if kind in (set, frozenset):
        members = sorted(map(encode, value))
        return b"S" + struct.pack(">Q", len(members)) + b"".join(members)
    token = getattr(value, "__cascade_token__", None)
    if token is not None:
        return b"c" + encode(token())
    try:
        raw = pickle.dumps(value, protocol=4)
    except Exception as exc:  # pickle raises many types for unpicklable objects
        raise UnhashableInput(f"{type(value).__name__} cannot be pickled for hashing: {exc}") from None
    return b"p" + struct.pack(">Q", len(raw)) + raw


def _mixed_keys(mapping: dict) -> bool:
    key_types = {type(k) for k in mapping}
    return len(key_types) != 1 or not key_types <= {str, int, float, bytes}


def _sort_key(item: tuple[Any, Any]) -> Any:
    return item[0]


def hash_value(value: Any) -> str:
    """Digest of one value's deterministic encoding."""
    return digest(encode(value))
