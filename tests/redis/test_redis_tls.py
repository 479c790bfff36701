"""rediss:// against a real TLS redis-server, with a certificate authority made for the test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

import cascade_core as cs

pytestmark = pytest.mark.redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=Cascade test CA",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"
    )
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    )
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, redis_server):  # redis_server: fails or skips as the suite is configured
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    directory = tmp_path_factory.mktemp("tls")
    ca, cert, key = _make_certificates(directory)
    port = _free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(ca),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("the TLS redis-server did not start")
            time.sleep(0.05)
    yield port, ca
    process.kill()
    process.wait()


@cs.task(cache=True, name="tls.square")
def square(x):
    return x * x


def test_rediss_with_the_ca_stores_and_resumes(tls_server):
    port, ca = tls_server
    uri = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    assert cs.run(square(6), state_backend=uri, cache_backend=uri, run_id="tls") == 36
    factory = cs.Engine(uri)
    report = factory.execute(square(6), run_id="tls")
    assert report.counts["resumed"] == 1 and report.counts["executed"] == 0


def test_rediss_refuses_a_server_it_cannot_verify(tls_server):
    port, _ = tls_server
    with pytest.raises(cs.BackendUnavailableError) as error:
        cs.run(square(2), state_backend=f"rediss://127.0.0.1:{port}/0?socket_connect_timeout=1")
    assert "\n" not in str(error.value) and f"rediss://127.0.0.1:{port}/0" in str(error.value)
    # Verification off, as the user asked for it explicitly:
    assert cs.run(square(2), state_backend=f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none") == 4


def test_plain_redis_to_a_tls_port_fails_fast(tls_server):
    port, _ = tls_server
    started = time.monotonic()
    with pytest.raises(cs.BackendUnavailableError):
        cs.run(square(3), state_backend=f"redis://127.0.0.1:{port}/0?socket_timeout=1&retries=0")
    assert time.monotonic() - started < 10
