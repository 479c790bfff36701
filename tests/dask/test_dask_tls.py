"""``dask+tls://`` against a real TLS scheduler: a CA and certificates made with the openssl CLI,
a ``dask scheduler --protocol tls`` and a ``dask worker`` started as separate processes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import distributed
import pytest

import cascade_core as cs

from .conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _needs_openssl() -> None:
    """Skipped without the openssl CLI, unless CASCADE_REQUIRE_TLS=1 (CI) makes that a failure."""
    if shutil.which("openssl") is None:
        message = "the openssl command is not on PATH (apt-get install openssl)"
        if os.environ.get("CASCADE_REQUIRE_TLS") == "1":
            pytest.fail(message + "; CASCADE_REQUIRE_TLS=1 requires it")
        pytest.skip(message)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             "-days", "2", "-subj", f"/CN={name}", cwd=folder)  # fmt: skip


def _identity(folder: Path, name: str, ca: str) -> None:
    """A key and a certificate for 127.0.0.1 signed by ``ca``, good for a server and a client."""
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", "/CN=localhost", cwd=folder)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf", cwd=folder)  # fmt: skip


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> Path:
    """``ca`` signs ``node`` (the scheduler's, the worker's and the client's identity); ``other`` is a
    CA nobody trusts, and it signs ``stranger``."""
    folder = tmp_path_factory.mktemp("tls")
    _ca(folder, "ca")
    _identity(folder, "node", "ca")
    _ca(folder, "other")
    _identity(folder, "stranger", "other")
    return folder


@pytest.fixture(scope="session")
def tls_scheduler(tls_files):
    """``tls://127.0.0.1:PORT``: a scheduler and one worker, separate processes, mutual TLS."""
    port = free_port()
    tls = ["--tls-ca-file", str(tls_files / "ca.pem"), "--tls-cert", str(tls_files / "node.pem"),
           "--tls-key", str(tls_files / "node.key")]  # fmt: skip
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tls_files}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--protocol", "tls", "--dashboard-address", ":0", *tls],
        **quiet,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", f"tls://127.0.0.1:{port}", "--nthreads", "2",
         "--no-dashboard", "--no-nanny", *tls],
        **quiet,
    )  # fmt: skip
    try:
        security = distributed.Security(
            tls_ca_file=str(tls_files / "ca.pem"),
            tls_client_cert=str(tls_files / "node.pem"),
            tls_client_key=str(tls_files / "node.key"),
            require_encryption=True,
        )
        with distributed.Client(f"tls://127.0.0.1:{port}", security=security, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)  # up, so that the tests' short timeouts measure only TLS
        yield port
    finally:
        for process in (worker, scheduler):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def _uri(port: int, folder: Path, ca: str, identity: str, timeout: float) -> str:
    return (
        f"dask+tls://127.0.0.1:{port}?ca_file={folder / ca}.pem&cert_file={folder / identity}.pem"
        f"&key_file={folder / identity}.key&timeout={timeout:g}"
    )


@cs.task
def square(x):
    return x * x


@cs.task
def total(values):
    return sum(values)


def test_a_graph_runs_on_a_tls_scheduler(tls_scheduler, tls_files):
    uri = _uri(tls_scheduler, tls_files, "ca", "node", 60)
    assert cs.run(total([square(i) for i in range(10)]), executor=uri) == 285
    check = subprocess.run(
        [sys.executable, "-m", "cascade_core", "backends", "check", uri], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"DaskExecutor(tls://127.0.0.1:{tls_scheduler}, 1 worker)" in check.stdout


@pytest.mark.parametrize(
    ("ca", "identity", "why"),
    [
        ("other", "node", "certificate verify failed|self-signed certificate"),  # we do not trust the scheduler
        ("ca", "stranger", "unknown ca|SSL|EOF"),  # the scheduler does not trust us
    ],
)
def test_a_certificate_the_other_side_does_not_trust_fails_in_one_line_within_the_timeout(
    tls_scheduler, tls_files, ca, identity, why
):
    uri = _uri(tls_scheduler, tls_files, ca, identity, 5)
    started = time.monotonic()
    with pytest.raises(cs.BackendUnavailableError) as refused:
        cs.run(square(3), executor=uri)
    assert time.monotonic() - started < 15
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"the Dask scheduler at {uri} refused the TLS connection (")
    assert "check that ca_file is the CA that signed the scheduler's certificate" in message
    assert re.search(why, message), message
