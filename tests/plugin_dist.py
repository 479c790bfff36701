"""Checks every plugin distribution's tests share (cascade-fsspec, cascade-ipfs): the conformance kit
run against a real store in a child pytest, the wheel's contents, and imports of the public API only."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT = [sys.executable, "-m", "pytest", "--pyargs", "cascade_core.testing", "-q", "-rs", "-W", "error"]


def run_kit(uri: str, cwd: Path, expected: str) -> None:
    """Run the conformance kit against ``uri``; it must pass with ``expected`` (``"10 passed"``) last."""
    done = subprocess.run(
        [*KIT, "-p", "no:cacheprovider", "--cascade-uri", uri], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert expected in done.stdout.splitlines()[-1], output[-2000:]


def wheel_parts(wheel: Path) -> tuple[list[str], str, str]:
    """(file names, entry_points.txt, METADATA) of a built wheel."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        return names, archive.read(entry_points).decode(), archive.read(metadata).decode()


def assert_imports_only_the_public_api(package: str) -> None:
    """Every module of ``<package>/src/<package>`` imports cascade-core through ``cascade_core.plugin`` only."""
    for path in (ROOT / package / "src" / package).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cascade_core"):
                assert node.module == "cascade_core.plugin", (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("cascade_core") for a in node.names), path.name


def loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    check = f"{code}\nimport sys\nprint([m for m in {modules!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])
