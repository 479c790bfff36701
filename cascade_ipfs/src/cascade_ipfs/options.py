"""``ipfs://`` and ``ipfs+https://`` URIs -> typed options (docs/blobs.md#ipfs).

``ipfs://[user:password@]HOST:PORT[/FOLDER]?authorization=...&timeout=30&pin=true&gateway=URL``:
HOST:PORT is the node's RPC API (as ``ipfs --api`` takes it), over http, or https with
``ipfs+https://``; FOLDER names this store's index in the node's MFS (default ``/cascade``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cascade_core.plugin import BackendURI, InvalidURIError, boolean, timeout_seconds

SCHEMES: Final = {"ipfs": "http", "ipfs+https": "https"}
DEFAULT_PORT: Final = 5001
DEFAULT_FOLDER: Final = "/cascade"
DEFAULT_TIMEOUT: Final = 30.0


def _gateway(raw: str) -> str:
    if not raw.startswith(("http://", "https://")) or len(raw) < 10:
        raise ValueError("expected the gateway's http:// or https:// address, such as http://127.0.0.1:8080")
    return raw.rstrip("/")


def _authorization(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected a header value, such as 'Bearer <token>'")
    return raw


OPTIONS: Final = {"authorization": _authorization, "timeout": timeout_seconds, "pin": boolean, "gateway": _gateway}


@dataclass(frozen=True)
class IpfsOptions:
    """What one ``ipfs://`` URI says: where the RPC API is, how to authenticate, what to do."""

    api: str  # http(s)://host:port/api/v0
    folder: str  # MFS folder of this store's index, no trailing slash
    label: str  # the URI with its secrets masked, for messages
    authorization: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    pin: bool = True
    gateway: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.authorization, self.password) if s)


def parse(uri: BackendURI) -> IpfsOptions:
    """The options of an ``ipfs://`` URI; InvalidURIError naming the key when one is wrong."""
    if uri.scheme not in SCHEMES:
        raise InvalidURIError(f"cascade-ipfs does not serve {uri.scheme}:// (it serves {', '.join(SCHEMES)})")
    if not uri.host:
        raise InvalidURIError(
            f"{uri.scheme}:// URI {uri} names no node: use {uri.scheme}://HOST:PORT, the node's RPC API "
            f"(for example {uri.scheme}://127.0.0.1:{DEFAULT_PORT})"
        )
    if uri.more_hosts:
        raise InvalidURIError(f"{uri.scheme}:// URI {uri} names several nodes: give one node's RPC API")
    values = uri.parse_options(OPTIONS)
    if values.get("authorization") and (uri.username or uri.password):
        raise InvalidURIError(
            f"{uri.scheme}:// URI {uri} has both a user and an authorization= header: give one", key="authorization"
        )
    folder = "/" + uri.path.strip("/") if uri.path.strip("/") else DEFAULT_FOLDER
    if any(part in ("", ".", "..") for part in folder[1:].split("/")):
        raise InvalidURIError(f"{uri.scheme}:// URI {uri} has a folder {folder!r} with an empty, . or .. part")
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    api = f"{SCHEMES[uri.scheme]}://{host}:{uri.port or DEFAULT_PORT}/api/v0"
    return IpfsOptions(
        api=api,
        folder=folder,
        label=str(uri),
        authorization=values.get("authorization"),
        username=uri.username,
        password=uri.password,
        timeout=values.get("timeout", DEFAULT_TIMEOUT),
        pin=values.get("pin", True),
        gateway=values.get("gateway"),
    )
