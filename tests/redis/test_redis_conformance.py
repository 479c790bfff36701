"""cascade-core's conformance kit, run against redis:// as an outside plugin author would."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.redis


def kit_directory() -> Path | None:
    spec = importlib.util.find_spec("cascade_core.testing")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations)))
    return directory if any(directory.glob("test_*.py")) else None


@pytest.mark.parametrize("options", ["", "?prefix=kit&ttl=60&state_ttl=600"])
def test_conformance_kit(redis_uri: str, redis_server, tmp_path: Path, options: str) -> None:
    assert kit_directory() is not None, "cascade_core.testing ships no conformance tests"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "cascade_core.testing",
        "--cascade-uri",
        redis_uri + options,
        "-q",
        "-p",
        "no:cacheprovider",
        "-rs",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "optional capability" not in done.stdout, done.stdout[-2000:]
    with redis_server.client() as client:
        assert client.dbsize() == 0, sorted(client.keys("*"))[:10]  # the kit cleans up after itself
