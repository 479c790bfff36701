"""The payload format every backend stores: header, checksum or HMAC signature, body.

Layout (see docs/security.md)::

    b"\\xca\\x5c"  magic
    1 byte       format version (1)
    1 byte       serializer: b"p" pickle, b"j" json
    1 byte       mode: b"c" checksum, b"h" HMAC-SHA256
    mode c:      8 bytes   blake2b(storage key, header, body)
    mode h:      1 byte key-id length, the key id, 32 bytes HMAC-SHA256(storage key, header, key id, body)
    body

The storage key (``state/<run id>/<node id>`` or ``cache/<cache key>``) is covered by the
checksum or signature but not stored, so a valid payload copied under another key is refused.
The signature is checked with ``hmac.compare_digest`` before the body is deserialized, and the
serializer byte must name one the backend allows (json only, for a json backend): a checksum
proves nothing about who wrote a payload, so a json store never unpickles.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import pickle
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigurationError, IntegrityError, SerializationError
from .._masking import describe
from .serializers import REF_CODE, SERIALIZER_CODES, dumps

MAGIC = b"\xca\x5c"
VERSION = 1
_SERIALIZER_NAMES = {code: name for name, code in SERIALIZER_CODES.items()}
_SERIALIZER_NAMES[REF_CODE] = "reference"
_CHECKSUM_HEADERS = {code: MAGIC + bytes((VERSION,)) + code + b"c" for code in _SERIALIZER_NAMES}
_NUL_HEADERS = {header: b"\0" + header for header in _CHECKSUM_HEADERS.values()}  # what follows the key
# What a codec of each serializer reads: a json backend must never unpickle.
_ACCEPTED = {"pickle": frozenset({b"p", b"j", REF_CODE}), "json": frozenset({b"j", REF_CODE})}
SECRET_ENV = "CASCADE_SECRET_KEY"
MIN_KEY_BYTES = 16

log = logging.getLogger("cascade.security")
_warned_unsigned = False
_warned_short: set[bytes] = set()  # ids of the short keys already warned about


def key_id(secret: bytes) -> bytes:
    """The public id of a signing key: the first 8 hex chars of its SHA-256."""
    return hashlib.sha256(secret).hexdigest()[:8].encode()


def keys_from_env(environ: Any = None) -> list[bytes]:
    """Signing keys from ``CASCADE_SECRET_KEY``: whitespace- or comma-separated, newest first.

    Unset: no keys. Set but holding no key (empty, blank): ConfigurationError, since signing
    would silently be off. A key under 16 bytes is used, with a warning once per key.
    """
    raw = (environ if environ is not None else os.environ).get(SECRET_ENV)
    if raw is None:
        return []
    keys = [part.encode() for part in raw.replace(",", " ").split()]
    if not keys:
        raise ConfigurationError(
            f"{SECRET_ENV} is set but holds no key (it is empty or blank): set it to a long random secret, "
            "or unset it to store payloads unsigned"
        )
    for secret in keys:
        kid = key_id(secret)
        if len(secret) < MIN_KEY_BYTES and kid not in _warned_short:
            _warned_short.add(kid)
            log.warning(
                "%s holds a key of %d bytes (id %s): use at least %d random bytes, for example the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
                SECRET_ENV,
                len(secret),
                kid.decode(),
                MIN_KEY_BYTES,
            )
    return keys


class Codec:
    """Turns values into signed or checksummed payloads and back.

    ``keys``: signing secrets, newest first; the first signs, all verify. Without keys,
    payloads carry a checksum and signed payloads cannot be read. ``trusted_store``: only this
    process or this machine can write to the store (the backend's ``trusted_store``; absent
    means False, docs/backends.md), so reading unsigned pickles from it is not warned about.
    """

    def __init__(
        self,
        serializer: str = "pickle",
        keys: list[bytes] | None = None,
        *,
        trusted_store: bool = False,
        blobs: Any = None,
    ) -> None:
        if serializer not in SERIALIZER_CODES:
            raise SerializationError(f"unknown serializer {serializer!r}: use pickle or json")
        self.serializer = serializer
        self.code = SERIALIZER_CODES[serializer]  # the header byte of what it writes
        self._accepted = _ACCEPTED[serializer]
        self._nul_headers = {h: n for h, n in _NUL_HEADERS.items() if h[3:4] in self._accepted}
        self._keys = {key_id(secret): secret for secret in (keys or [])}
        self._signing = next(iter(self._keys.items()), None)
        self.trusted_store = trusted_store
        self.blobs = blobs  # the run's BlobSpec, for payloads that are references (blob_refs)

    @property
    def signs(self) -> bool:
        return self._signing is not None

    def accepts(self, code: bytes, body: bytes = b"") -> bool:
        """Whether this codec reads bodies of serializer ``code`` (a json codec reads json only);
        for a reference (``body`` given), whether it reads the serializer of the blob it names."""
        if code == REF_CODE:
            code = body[-1:] if body[-2:-1] == b" " else b""
        return code in self._accepted

    # -- writing -------------------------------------------------------------

    def serialize(self, value: Any) -> bytes:
        """The body bytes of ``value``; raises SerializationError with the serializer's reason."""
        try:
            return dumps(self.serializer, value)
        except Exception as exc:  # pickle and json raise many exception types
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SerializationError(
                f"{type(value).__name__} value cannot be serialized with {self.serializer}: {reason}"
            ) from exc

    def dumps(self, storage_key: str, value: Any) -> bytes:
        return self.seal(storage_key, self.code, self.serialize(value))

    def seal(self, storage_key: str, code: bytes, body: bytes) -> bytes:
        if self._signing is None:
            header = _CHECKSUM_HEADERS[code]
            return b"".join((header, _checksum(storage_key, header, body), body))
        kid, secret = self._signing
        header = MAGIC + bytes((VERSION,)) + code + b"h"
        mac = hmac.new(secret, _signed_message(storage_key, header, kid, body), hashlib.sha256).digest()
        return header + bytes((len(kid),)) + kid + mac + body

    def seal_many(self, key_prefix: str, items: Mapping[str, tuple[bytes, bytes]]) -> dict[str, bytes]:
        """``{name: payload}`` for ``{name: (serializer code, body)}``, each bound to ``key_prefix + name``."""
        return {name: self.seal(key_prefix + name, code, body) for name, (code, body) in items.items()}

    def rebind(self, old_key: str, new_key: str, payload: bytes) -> bytes:
        """Verify ``payload`` under ``old_key`` and re-seal its body under ``new_key`` (no unpickling)."""
        code, body = self.open(old_key, payload)
        return self.seal(new_key, code, body)

    # -- reading -------------------------------------------------------------

    def open(self, storage_key: str, payload: bytes) -> tuple[bytes, bytes]:
        """Verify a payload; return (serializer code, body). Raises IntegrityError."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise IntegrityError(
                f"stored value at {storage_key!r} is {type(payload).__name__}, not bytes", key=storage_key
            )
        payload = bytes(payload)
        if len(payload) < 5 or payload[:2] != MAGIC:
            raise IntegrityError(
                f"stored value at {storage_key!r} is not a Cascade payload (corrupt or written by something else); "
                "delete it and rerun",
                key=storage_key,
            )
        if payload[2] != VERSION:
            raise IntegrityError(
                f"stored value at {storage_key!r} has format version {payload[2]}, this Cascade reads {VERSION}: "
                "upgrade cascade-core",
                key=storage_key,
            )
        code, mode = payload[3:4], payload[4:5]
        header = payload[:5]
        if code not in self._accepted:
            raise self.refusal(storage_key, code)
        if mode == b"c":
            if self._signing is not None:
                raise IntegrityError(
                    f"stored value at {storage_key!r} is unsigned but signing is on; refusing to read it "
                    "(delete it, or rerun to recompute it)",
                    key=storage_key,
                )
            body = payload[13:]
            if len(payload) < 13 or not hmac.compare_digest(payload[5:13], _checksum(storage_key, header, body)):
                raise IntegrityError(
                    f"stored value at {storage_key!r} fails its checksum "
                    "(corrupt, truncated or copied from another key)",
                    key=storage_key,
                )
            return code, body
        if mode == b"h":
            kid_len = payload[5] if len(payload) > 5 else 0
            kid = payload[6 : 6 + kid_len]
            mac = payload[6 + kid_len : 38 + kid_len]
            body = payload[38 + kid_len :]
            secret = self._keys.get(kid)
            if secret is None:
                hint = (
                    f"set {SECRET_ENV}"
                    if not self._keys
                    else f"add the key with id {kid.decode(errors='replace')!r} to {SECRET_ENV}"
                )
                raise IntegrityError(
                    f"stored value at {storage_key!r} is signed with a key this process does not have: {hint}",
                    key=storage_key,
                )
            expected = hmac.new(secret, _signed_message(storage_key, header, kid, body), hashlib.sha256).digest()
            if len(mac) != 32 or not hmac.compare_digest(mac, expected):
                raise IntegrityError(
                    f"stored value at {storage_key!r} fails its signature "
                    "(tampered, truncated or copied from another key)",
                    key=storage_key,
                )
            return code, body
        raise IntegrityError(f"stored value at {storage_key!r} has an unknown integrity mode", key=storage_key)

    def open_many(
        self, key_prefix: str, payloads: Mapping[str, bytes]
    ) -> tuple[dict[str, tuple[bytes, bytes]], list[IntegrityError]]:
        """Verify ``{name: payload}``, each bound to ``key_prefix + name``.

        Returns ``{name: (serializer code, body)}`` of the payloads that pass, and the errors
        of those that do not (see :meth:`open`).
        """
        opened: dict[str, tuple[bytes, bytes]] = {}
        errors: list[IntegrityError] = []
        primed = hashlib.blake2b(key_prefix.encode(), digest_size=8)
        nul_headers = self._nul_headers if self._signing is None else {}
        compare = hmac.compare_digest
        for name, payload in payloads.items():
            # The common case of open(), inlined: checksummed bytes that pass.
            if type(payload) is bytes:
                header = payload[:5]
                nul_header = nul_headers.get(header)
                if nul_header is not None:
                    body = payload[13:]
                    digest = primed.copy()
                    digest.update(name.encode() + nul_header)
                    digest.update(body)
                    if compare(payload[5:13], digest.digest()):
                        opened[name] = (header[3:4], body)
                        continue
            try:
                opened[name] = self.open(key_prefix + name, payload)
            except IntegrityError as exc:
                errors.append(exc)
        return opened, errors

    def loads(self, storage_key: str, payload: bytes) -> Any:
        code, body = self.open(storage_key, payload)
        return self.deserialize(storage_key, code, body)

    def deserialize(self, storage_key: str, code: bytes, body: bytes) -> Any:
        """The value of a body that :meth:`open` verified."""
        if code == REF_CODE:  # the bytes are in a blob store: fetched and checked against their hash
            from .blob_refs import dereference

            code, body = dereference(self.blobs, storage_key, body)
        if code not in self._accepted:
            raise self.refusal(storage_key, code)
        if code == b"p":
            _warn_unsigned_pickle(self)
            try:
                return pickle.loads(body)
            except Exception as exc:
                raise IntegrityError(
                    f"stored value at {storage_key!r} does not unpickle: {describe(exc)}", key=storage_key
                ) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise IntegrityError(f"stored value at {storage_key!r} is not valid JSON: {exc}", key=storage_key) from exc

    def refusal(self, storage_key: str, code: bytes) -> IntegrityError:
        """The error for a stored body of serializer ``code`` that this codec does not read."""
        name = _SERIALIZER_NAMES.get(code)
        if name is None:
            return IntegrityError(f"stored value at {storage_key!r} names an unknown serializer", key=storage_key)
        return IntegrityError(
            f"stored value at {storage_key!r} was written with {name}, but this backend is set to "
            f"{self.serializer} and reads only "
            f"{' or '.join(sorted(_SERIALIZER_NAMES[c] for c in self._accepted if c != REF_CODE))}: "
            "refusing to read it (it may have been planted; delete it, or rerun to recompute it)",
            key=storage_key,
        )


def _checksum(storage_key: str, header: bytes, body: bytes) -> bytes:
    digest = _EMPTY_CHECKSUM.copy()  # cheaper than blake2b(..., digest_size=8) per payload
    digest.update(storage_key.encode() + b"\0" + header)
    digest.update(body)
    return digest.digest()


_EMPTY_CHECKSUM = hashlib.blake2b(digest_size=8)


def _signed_message(storage_key: str, header: bytes, kid: bytes, body: bytes) -> bytes:
    key_bytes = storage_key.encode()
    return len(key_bytes).to_bytes(4, "big") + key_bytes + header + bytes((len(kid),)) + kid + body


def _warn_unsigned_pickle(codec: Codec) -> None:
    global _warned_unsigned
    if codec.signs or codec.trusted_store or _warned_unsigned:
        return
    _warned_unsigned = True
    log.warning(
        "reading pickled results from a shared store without signatures: anyone who can write to it can run "
        "code here. Set %s to a long random secret on every machine to sign and verify payloads "
        "(see docs/security.md)",
        SECRET_ENV,
    )


def state_key(run_id: str, node_id: str) -> str:
    """The storage key a state payload is bound to."""
    return f"state/{run_id}/{node_id}"


def cache_storage_key(cache_key: str) -> str:
    """The storage key a cache payload is bound to."""
    return f"cache/{cache_key}"
