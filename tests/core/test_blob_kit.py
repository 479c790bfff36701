"""The built-in blob stores pass the conformance kit's blob-store contract, run as plugin authors run it."""

from __future__ import annotations

import pytest
from tests.core.test_conformance_kit import count, run_kit

BLOB_TESTS = 11  # the tests of testing/test_blob_contract.py


# memory:// offers a blob store too: test_conformance_kit.py runs the whole kit, blob contract included, on it.
@pytest.mark.parametrize("scheme", ["file"])
def test_builtin_blob_store_passes_the_kit(scheme, tmp_path):
    uri = f"file://{tmp_path / 'blobs'}"
    result = run_kit("--cascade-uri", uri, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert count("failed", result.stdout) == count("error", result.stdout) == 0, output
    assert count("passed", result.stdout) >= BLOB_TESTS, output
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert not any("provides no blobs" in line for line in skips), skips
    if scheme == "file":
        assert count("passed", result.stdout) == BLOB_TESTS, output
        assert not list((tmp_path / "blobs").rglob("*.tmp"))  # the kit cleans up and leaves no partial blob
