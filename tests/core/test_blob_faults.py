"""A driver killed (SIGKILL) while it writes a blob leaves no visible partial blob, and the run resumes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cascade_core.blobs.file import FileBlobStore

FLOW = textwrap.dedent(
    """
    import sys
    import cascade_core as cs

    @cs.task
    def huge() -> bytes:
        return b"\\x05" * 400_000_000

    @cs.task
    def size(data: bytes) -> int:
        return len(data)

    print(cs.run(size(huge()), state_backend=sys.argv[1], blob_store=sys.argv[2], run_id="killed", lease_ttl=1))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_mid_upload_leaves_no_visible_partial_blob(tmp_path: Path, store_at, wait_until):
    script = tmp_path / "flow.py"
    script.write_text(FLOW)
    root = tmp_path / "blobs"
    args = [sys.executable, str(script), f"sqlite:///{tmp_path / 'c.db'}", f"file://{root}"]
    driver = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(root.rglob("*.tmp")) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.001)
    assert list(root.rglob("*.tmp")), "the driver never started writing the blob"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    driver.stdout.close()  # type: ignore[union-attr]
    driver.stderr.close()  # type: ignore[union-attr]
    assert list(FileBlobStore(str(root)).list_blobs()) == []  # only the temporary file, which is no blob
    wait_until(lambda: store_at(args[2]).run_lease_free("killed"), 10, "the dead driver's run lease to expire")
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "400000000"
    (info,) = FileBlobStore(str(root)).list_blobs()
    data = (root / "sha256" / info.blob_id[7:9] / info.blob_id[9:11] / info.blob_id[7:]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == info.blob_id[7:]
