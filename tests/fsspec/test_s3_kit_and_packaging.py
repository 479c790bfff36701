"""cascade-fsspec passes the conformance kit against moto's S3 server, builds its own wheel, and imports
nothing of cascade-core but its public plugin API."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_s3_blob_store_passes_the_kit(s3_bucket, tmp_path):
    command = [sys.executable, "-m", "pytest", "--pyargs", "cascade_core.testing", "-q", "-rs", "-W", "error"]
    done = subprocess.run(
        [*command, "-p", "no:cacheprovider", "--cascade-uri", s3_bucket],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "10 passed" in done.stdout.splitlines()[-1], output[-2000:]  # refresh_after: one blob test skips


def test_the_wheel_builds_on_its_own_with_its_entry_points(build_wheel, tmp_path):
    with zipfile.ZipFile(build_wheel("cascade_fsspec", tmp_path)) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        entries = archive.read(entry_points).decode()
        meta = archive.read(metadata).decode()
    assert any(n.endswith("cascade_fsspec/py.typed") for n in names)
    for scheme in ("s3", "gs", "gcs", "az", "abfs"):
        assert f"{scheme} = cascade_fsspec.provider:provider [blobs]" in entries
    assert "Requires-Dist: cascade-core" in meta and "Requires-Dist: fsspec" in meta
    assert "Provides-Extra: s3" in meta


def test_it_imports_only_the_public_plugin_api():
    for path in (ROOT / "cascade_fsspec" / "src" / "cascade_fsspec").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cascade_core"):
                assert node.module == "cascade_core.plugin", (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("cascade_core") for a in node.names), path.name


def test_listing_imports_no_driver():
    code = (
        "import sys\n"
        "from cascade_core._registry import registry\n"
        "registry.load('s3')\n"
        "print([m for m in ('fsspec', 's3fs', 'botocore') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
