"""What users see when the node is not there, fails, is not IPFS, or refuses credentials: one-line
BackendUnavailableErrors within the timeout, secrets masked (docs/blobs.md#ipfs)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cascade_test_cli import cli, write_flow

import cascade_core as cs
from cascade_core.plugin import parse_uri
from cascade_ipfs.store import IpfsBlobStore

BLOB = "sha256:" + "0" * 64
TOKEN = "Bearer s3cr3t-t0ken"


class FakeServer:
    """An HTTP server on a free loopback port that answers every POST with ``status`` and ``body``
    and keeps the Authorization headers it was sent."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"<html>hello</html>"
        self.headers: list[str | None] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                fake.headers.append(self.headers.get("Authorization"))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(fake.status)
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


def _failure(uri: str) -> str:
    store = IpfsBlobStore.from_uri(parse_uri(uri))
    try:
        with pytest.raises(cs.BackendUnavailableError) as caught:
            store.get(BLOB)
    finally:
        store.close()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_node_that_does_not_answer_fails_within_the_timeout():
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        message = _failure(f"ipfs://127.0.0.1:{port}?timeout=1")
        assert time.monotonic() - started < 5
    assert message.startswith(f"IPFS node of blob store ipfs://127.0.0.1:{port}?timeout=1 failed version: no answer")


def test_a_port_where_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert "ConnectError" in _failure(f"ipfs://127.0.0.1:{port}?timeout=2")


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (502, b"Bad Gateway", "HTTP 502: Bad Gateway"),
        (500, b"oops", "HTTP 500: oops"),
        (200, b"<html>hello</html>", "its answer is not JSON: is this an IPFS node's RPC API?"),
        (200, b'{"name": "something else"}', "answered something else than an IPFS node's version"),
        (404, b"Not Found", "HTTP 404: it serves no IPFS RPC API (/api/v0) at that address"),
    ],
)
def test_5xx_and_servers_that_are_not_ipfs(fake, status, body, said):
    fake.status, fake.body = status, body
    assert said in _failure(f"ipfs://127.0.0.1:{fake.port}?timeout=5")


def test_the_authorization_header_and_basic_auth_are_sent_and_masked(fake):
    fake.status, fake.body = 401, b"unauthorized"
    message = _failure(f"ipfs://127.0.0.1:{fake.port}?authorization={TOKEN.replace(' ', '%20')}")
    assert fake.headers[-1] == TOKEN
    assert "refused the credentials" in message and "s3cr3t" not in message and "authorization=***" in message
    message = _failure(f"ipfs://alice:pa55word@127.0.0.1:{fake.port}")
    assert fake.headers[-1] == "Basic YWxpY2U6cGE1NXdvcmQ="  # alice:pa55word
    assert "pa55word" not in message and "alice:***@" in message
    store = IpfsBlobStore.from_uri(parse_uri("ipfs+https://bob:hunter2@node.example:5001"))
    assert "hunter2" not in repr(store) and store.options.api == "https://node.example:5001/api/v0"


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("ipfs://127.0.0.1:5001?pin=maybe", "invalid value 'maybe' for option 'pin'"),
        ("ipfs://127.0.0.1:5001?timeout=0", "invalid value '0' for option 'timeout'"),
        ("ipfs://127.0.0.1:5001?gateway=ftp://x", "invalid value 'ftp://x' for option 'gateway'"),
        ("ipfs://127.0.0.1:5001?bogus=1", "unknown option 'bogus'"),
        ("ipfs:///folder", "names no node"),
        ("ipfs://u:p@127.0.0.1:5001?authorization=x", "both a user and an authorization= header"),
        ("ipfs://127.0.0.1:5001/a/../b", "empty, . or .. part"),
    ],
)
def test_bad_uris_are_invalid_uri_errors(uri, said):
    with pytest.raises(cs.InvalidURIError) as caught:
        IpfsBlobStore.from_uri(parse_uri(uri))
    assert said in str(caught.value)


def test_the_cli_says_so_in_one_line_without_a_traceback(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    check = cli(tmp_path, "backends", "check", f"ipfs://u:pa55word@127.0.0.1:{port}?timeout=2")
    assert check.returncode == 1 and "FAILED: IPFS node of blob store ipfs://u:***@" in check.stdout
    assert "pa55word" not in check.stdout + check.stderr and "Traceback" not in check.stderr
    bad = cli(tmp_path, "backends", "check", "ipfs://127.0.0.1:5001?pin=maybe")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    write_flow(tmp_path)
    run = cli(
        tmp_path,
        "run",
        "flow.py:single",
        "--state",
        "sqlite:///runs.db",
        "--blobs",
        f"ipfs://127.0.0.1:{port}?timeout=2&threshold=1",
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert f"IPFS node of blob store ipfs://127.0.0.1:{port}?timeout=2 failed" in run.stdout + run.stderr
