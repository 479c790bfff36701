"""CIDs as cascade-ipfs computes and compares them (no multiformats dependency).

A blob that fits one block is added with raw leaves and CID version 1, so its CID is
CIDv1(raw, sha2-256) of its bytes: ``01 55 12 20`` + SHA-256, written in base32
(``bafkrei...``). That one is computed here and must equal the node's answer. Nodes print
CIDs in different bases (js-ipfs in base58btc, ``zb2r...``; kubo in base32; ``Qm...`` for
CIDv0), so CIDs are compared by their bytes, through ``canonical``.
"""

from __future__ import annotations

import base64
import hashlib

RAW = 0x55  # multicodec of raw bytes
DAG_PB = 0x70
SHA2_256 = 0x12
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def raw_cid(data: bytes | memoryview) -> str:
    """CIDv1(raw, sha2-256) of ``data``, in base32: what a node answers for a one-block raw add."""
    return raw_cid_of_digest(hashlib.sha256(data).digest())


def raw_cid_of_digest(digest: bytes) -> str:
    """CIDv1(raw, sha2-256) of a SHA-256 digest, in base32."""
    return encode(bytes((1, RAW, SHA2_256, 32)) + digest)


def encode(cid: bytes) -> str:
    """A CID's bytes as text: base32 multibase for CIDv1, base58btc (``Qm...``) for CIDv0."""
    if cid[:2] == bytes((SHA2_256, 32)) and len(cid) == 34:
        return _b58encode(cid)
    return "b" + base64.b32encode(cid).decode("ascii").lower().rstrip("=")


def decode(text: str) -> bytes:
    """A CID's bytes from its text in base32 (``b...``), base58btc (``z...``) or CIDv0 (``Qm...``)."""
    if len(text) == 46 and text.startswith("Qm"):
        return _b58decode(text)
    if text.startswith(("b", "B")):
        body = text[1:].upper()
        return base64.b32decode(body + "=" * (-len(body) % 8))
    if text.startswith("z"):
        return _b58decode(text[1:])
    raise ValueError(f"not a CID in a base cascade-ipfs reads (base32 or base58btc): {text!r}")


def canonical(text: str) -> str:
    """The CID in one form (base32 for CIDv1), so that two spellings of one CID compare equal."""
    return encode(decode(text))


def is_raw_sha256(text: str) -> bool:
    """Whether the CID is CIDv1(raw, sha2-256): one block whose hash is the blob's SHA-256."""
    try:
        return decode(text)[:4] == bytes((1, RAW, SHA2_256, 32))
    except ValueError:
        return False


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _B58.find(char)
        if index < 0:
            raise ValueError(f"not base58btc: {text!r}")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body
