"""The node's RPC API over httpx: POST ``/api/v0/<command>``, errors -> Cascade's errors.

One ``httpx.Client`` per process (a pooled, thread-safe client; rebuilt after a fork), made on
first use. The first call of a process asks the node its ``version``, so that an HTTP server
that is not an IPFS node is told apart from a node's own error answers.

What the node answers with an error object (``{"Message": ..., "Type": "error"}``, HTTP 500
in js-ipfs and kubo alike) is a ``NodeError`` that the store reads ("file does not exist",
"not pinned"); anything else that fails (no answer within the timeout, a 5xx without an IPFS
error object, an answer that is not IPFS's) is a ``BackendUnavailableError``, one line, with
the URI's secrets masked.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from cascade_core.plugin import BackendUnavailableError, mask_credentials

from .options import IpfsOptions


class NodeError(Exception):
    """An error object the node answered (its ``Message``), for the store to interpret."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(message)
        self.command = command
        self.message = message


class Rpc:
    """Calls to one node's RPC API. Picklable: the HTTP client is rebuilt in each process."""

    def __init__(self, options: IpfsOptions) -> None:
        self.options = options
        self._client: Any = None
        self._pid = 0
        self._version: dict[str, Any] | None = None
        self._lock = threading.Lock()

    # -- the client --------------------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    self._client = self._new_client()
                    self._pid = os.getpid()
                    # Stores opened from a URI live as long as their process and are never closed
                    # (docs/blobs.md): close the connections when the store is collected instead.
                    weakref.finalize(self, self._client.close)
                    self._version = None
        return self._client

    def _new_client(self) -> Any:
        import httpx

        o = self.options
        headers = {"Authorization": o.authorization} if o.authorization else {}
        auth = httpx.BasicAuth(o.username or "", o.password or "") if (o.username or o.password) else None
        return httpx.Client(
            base_url=o.api,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(o.timeout),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["options"])  # type: ignore[misc]

    # -- calls -------------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """The node's answer to ``version`` (asked once per process): proves it is an IPFS node."""
        if self._version is None or self._pid != os.getpid():
            answer = self._json("version", (), handshake=False)
            if not isinstance(answer, dict) or not isinstance(answer.get("Version"), str):
                raise self.unavailable("version", "it answered something else than an IPFS node's version")
            self._version = answer
        return self._version

    def json(self, command: str, params: Any = (), **kwargs: Any) -> Any:
        """POST ``command``; the node's JSON answer (NodeError for an error object)."""
        return self._json(command, params, **kwargs)

    def _json(self, command: str, params: Any, *, handshake: bool = True, **kwargs: Any) -> Any:
        with self.stream(command, params, handshake=handshake, **kwargs) as response:
            body = response.read()
        try:
            return json.loads(body) if body.strip() else {}
        except ValueError:
            lines = [line for line in body.splitlines() if line.strip()]
            try:  # some commands answer one JSON object per line (add, pin/ls with stream)
                return [json.loads(line) for line in lines]
            except ValueError:
                raise self.unavailable(command, "its answer is not JSON: is this an IPFS node's RPC API?") from None

    @contextmanager
    def stream(self, command: str, params: Any = (), *, handshake: bool = True, **kwargs: Any) -> Iterator[Any]:
        """POST ``command`` and yield the response, its body not read yet (for ``cat``)."""
        import httpx

        if handshake:
            self.version()
        try:
            with self.client().stream("POST", "/" + command, params=params, **kwargs) as response:
                if response.status_code != 200:
                    self._refuse(command, response)
                yield response
        except httpx.TimeoutException as exc:
            raise self.unavailable(
                command, f"no answer within {self.options.timeout:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise self.unavailable(command, f"{type(exc).__name__}: {exc}") from exc

    def _refuse(self, command: str, response: Any) -> None:
        status = response.status_code
        body = response.read()[:4000]
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        is_error = isinstance(answer, dict) and answer.get("Type") == "error" and isinstance(answer.get("Message"), str)
        if is_error and (status >= 500 or status == 400):  # the node's own error answer (500 in js-ipfs and kubo)
            raise NodeError(command, answer["Message"])
        if status in (401, 403):
            raise self.unavailable(
                command, f"HTTP {status}: the node refused the credentials (check authorization= or user:password@)"
            )
        if status == 404:
            raise self.unavailable(command, "HTTP 404: it serves no IPFS RPC API (/api/v0) at that address")
        text = body.decode("utf-8", "replace").strip().splitlines()
        raise self.unavailable(command, f"HTTP {status}" + (f": {text[0][:200]}" if text else ""))

    def unavailable(self, command: str, reason: str) -> BackendUnavailableError:
        """A one-line BackendUnavailableError naming the masked URI, what was asked and why it failed."""
        text = mask_credentials(reason)
        for secret in self.options.secrets:
            text = text.replace(secret, "***")
        return BackendUnavailableError(
            f"IPFS node of blob store {self.options.label} failed {command}: {text}; "
            "check that the node runs and that the URI names its RPC API (ipfs://HOST:PORT)"
        )


PART: Final = 1 << 20  # bytes per slice of a streamed upload


def multipart(data: bytes | memoryview, filename: str = "blob") -> dict[str, Any]:
    """httpx arguments that upload ``data`` as one multipart file, streamed in 1 MiB slices of a
    memoryview: no copy of the payload is made (httpx's own multipart encoder copies it whole)."""
    boundary = os.urandom(16).hex()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    view = memoryview(data).cast("B")

    def body() -> Iterator[bytes | memoryview]:
        yield head
        for start in range(0, len(view), PART):
            yield view[start : start + PART]
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + len(view) + len(tail)),
    }
    return {"content": body(), "headers": headers}
