"""The digest of node ids, cache keys and code versions.

What is digested (a call's inputs as bytes) is ``encoding``'s; this is only the hash.
"""

from __future__ import annotations

import hashlib


def digest(data: bytes) -> str:
    """A 32-hex-char digest; wide enough that collisions do not happen by chance."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()
