"""``cascade run --blobs`` / ``$CASCADE_BLOBS``, ``cascade blobs du`` and ``gc`` (stale temporary
files of killed writes included), and blob stores in ``cascade backends`` (real subprocesses
against sqlite and file:// stores)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cascade_test_cli import STORE_VARIABLES, cli

from cascade_core.blobs.file import FileBlobStore

FLOW = """
import os
import cascade_core as cs


@cs.task(cache=True)
def blob(seed: int) -> bytes:
    with open(os.environ["FLOW_LOG"], "a") as log:
        log.write("blob\\n")
    return bytes([seed]) * 300_000


@cs.task
def size(data: bytes) -> int:
    return len(data)


def pipeline(seed: int = 1):
    return size(blob(seed))
"""


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "flow.py").write_text(FLOW)
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE", "CASCADE_BLOBS")}
    env["FLOW_LOG"] = str(tmp_path / "log")
    env["CASCADE_STATE"] = env["CASCADE_CACHE"] = f"sqlite:///{tmp_path / 'c.db'}"
    return tmp_path, env


def cascade(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file())


def test_run_with_blobs_flag_and_env_then_du(project):
    tmp, env = project
    root = tmp / "blobs"
    done = cascade(["run", "flow.py:pipeline", "--blobs", f"file://{root}?threshold=64KiB", "--json"], env, tmp)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == 300_000
    assert len(blob_files(root)) == 1
    env2 = dict(env, CASCADE_BLOBS=f"file://{root}?threshold=64KiB")
    done = cascade(["run", "flow.py:pipeline", "-p", "seed=2", "--json"], env2, tmp)
    assert done.returncode == 0, done.stderr
    assert len(blob_files(root)) == 2
    du = cascade(["blobs", "du", "--json"], env2, tmp)
    assert du.returncode == 0, du.stderr
    report = json.loads(du.stdout)
    assert report["count"] == 2 and report["bytes"] == sum(p.stat().st_size for p in blob_files(root))
    text = cascade(["blobs", "du", "--blobs", f"file://{root}"], env, tmp)
    assert text.stdout.startswith(f"file://{root}: 2 blobs, ")


def test_gc_keeps_referenced_and_recent_blobs_and_deletes_the_rest(project):
    tmp, env = project
    root = tmp / "blobs"
    env["CASCADE_BLOBS"] = f"file://{root}?threshold=64KiB"
    assert cascade(["run", "flow.py:pipeline", "--run-id", "keep"], env, tmp).returncode == 0
    assert cascade(["run", "flow.py:pipeline", "-p", "seed=2", "--run-id", "gone"], env, tmp).returncode == 0
    assert cascade(["runs", "forget", "gone"], env, tmp).returncode == 0
    # seed=2's blob is still referenced by its cache entry: nothing to collect.
    done = cascade(["blobs", "gc", "--older-than", "0", "--json"], env, tmp)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"] == [] and len(blob_files(root)) == 2
    assert cascade(["cache", "clear"], env, tmp).returncode == 0
    # Now only the state of run "keep" references a blob; the other one is recent (default 24h grace).
    done = cascade(["blobs", "gc", "--json"], env, tmp)
    report = json.loads(done.stdout)
    assert report["deleted"] == [] and report["recent"] == 1 and report["referenced"] == 1
    dry = cascade(["blobs", "gc", "--older-than", "0", "--dry-run"], env, tmp)
    assert dry.returncode == 0 and "would delete sha256:" in dry.stdout and len(blob_files(root)) == 2
    old = time.time() - 7200
    for path in blob_files(root):
        os.utime(path, (old, old))
    done = cascade(["blobs", "gc", "--older-than", "1h", "--json"], env, tmp)
    report = json.loads(done.stdout)
    assert len(report["deleted"]) == 1 and report["referenced"] == 1
    (left,) = blob_files(root)
    assert "sha256:" + left.name not in report["deleted"]
    # The run that kept its blob still resumes from it without running its task again.
    log_before = (tmp / "log").read_text().count("blob")
    assert cascade(["run", "flow.py:pipeline", "--run-id", "keep"], env, tmp).returncode == 0
    assert (tmp / "log").read_text().count("blob") == log_before


def test_gc_usage_errors_are_one_line(project):
    tmp, env = project
    done = cascade(["blobs", "du"], env, tmp)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: no blob store: pass --blobs URI or set $CASCADE_BLOBS"
    done = cascade(["blobs", "gc", "--blobs", f"file://{tmp}/b", "--older-than", "soon"], env, tmp)
    assert done.returncode == 2
    assert "--older-than: expected a duration such as 90s, 30m, 24h or 7d, got 'soon'" in done.stderr
    assert "Traceback" not in done.stderr


def test_backends_lists_and_checks_blob_stores(project, tmp_path):
    tmp, env = project
    listing = cascade(["backends", "--json"], env, tmp)
    assert listing.returncode == 0, listing.stderr
    rows = {row["scheme"]: row for row in json.loads(listing.stdout)}
    assert rows["file"]["provides"] == ["blobs"]
    assert rows["memory"]["provides"] == ["state", "cache", "blobs"]
    check = cascade(["backends", "check", f"file://{tmp}/blobs?threshold=64KiB"], env, tmp)
    assert check.returncode == 0, check.stderr
    assert "blobs: ok" in check.stdout and "blobs over 65536 bytes stored by reference" in check.stdout
    assert blob_files(tmp / "blobs") == []  # the probe was deleted
    check = cascade(["backends", "check", "memory://"], env, tmp)
    assert check.returncode == 0 and "memory:// blobs: ok" in check.stdout


# -- gc deletes the temporary files of killed writes (file://) ---------------------------------


def _gc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return cli(cwd, "blobs", "gc", *args, unset=(*STORE_VARIABLES, "CASCADE_BLOBS"), timeout=120)


def test_gc_deletes_stale_temporary_files_and_keeps_fresh_ones(tmp_path: Path):
    root = tmp_path / "blobs"
    store = FileBlobStore(str(root))
    data = b"\x01" * 1000
    blob_id = "sha256:" + hashlib.sha256(data).hexdigest()
    assert store.put(blob_id, data)
    (blob,) = [path for path in (root / "sha256").rglob("*") if path.is_file()]
    stale = blob.with_name(blob.name + ".4242.1.tmp")  # a write killed two hours ago
    stale.write_bytes(b"\x01" * 300)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = blob.parent.parent / "ef" / ("ab" * 32 + ".4243.2.tmp")  # a write under way, in another folder
    fresh.parent.mkdir()
    fresh.write_bytes(b"\x02" * 50)
    assert list(store.list_blobs()) == [(blob_id, 1000, blob.stat().st_mtime)]  # temporaries are no blobs
    args = ["--blobs", f"file://{root}", "--state", "none", "--cache", "none"]  # nothing references it
    stale_name = str(stale.relative_to(root))
    # --dry-run reports the stale one and deletes nothing.
    dry = _gc([*args, "--older-than", "1h", "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert f"would delete temporary file {stale_name}\n" in dry.stdout
    assert "would delete 1 stale temporary files (300 bytes)" in dry.stdout and str(fresh.name) not in dry.stdout
    assert stale.exists() and fresh.exists()
    done = _gc([*args, "--older-than", "1h", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["temporary"] == 2 and report["temporary_deleted"] == [stale_name]
    assert report["temporary_deleted_bytes"] == 300
    assert report["recent"] == 1 and report["deleted"] == []  # the blob itself is recent: kept
    assert not stale.exists() and fresh.exists() and blob.exists()
    # A second gc finds nothing more to delete.
    again = json.loads(_gc([*args, "--older-than", "1h", "--json"], tmp_path).stdout)
    assert again["temporary"] == 1 and again["temporary_deleted"] == []


def test_delete_temporary_refuses_anything_but_a_temporary_file_of_the_store(tmp_path: Path):
    store = FileBlobStore(str(tmp_path / "blobs"))
    outside = tmp_path / "precious.tmp"
    outside.write_bytes(b"keep")
    for name in ("../precious.tmp", "sha256/../../precious.tmp", "sha256/ab/cd/" + "ab" * 32):
        with pytest.raises(ValueError, match="not a temporary file of"):
            store.delete_temporary(name)
    assert outside.exists()
    assert store.delete_temporary("sha256/ab/cd/x.1.2.tmp") is False
