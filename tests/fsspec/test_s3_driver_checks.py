"""What cascade-fsspec checks when a store is opened (issue #21): a driver older than supported is a
ConfigurationError naming both versions and the pip command; an option the driver does not take
is an InvalidURIError naming it and the known ones, exit 2 from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core._store import blob_refs
from cascade_fsspec.drivers import MINIMUM, release


def _fake_distribution(folder: Path, name: str, version: str) -> Path:
    """A dist-info that importlib.metadata finds before the installed one (as an old install would be)."""
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder


def test_an_s3fs_older_than_supported_is_a_configuration_error(tmp_path, monkeypatch):
    pytest.importorskip("s3fs")
    monkeypatch.syspath_prepend(str(_fake_distribution(tmp_path, "s3fs", "0.4.2")))
    with pytest.raises(cs.ConfigurationError) as info:
        blob_refs.resolve_blobs("s3://bucket/prefix?endpoint_url=http://127.0.0.1:9")
    assert str(info.value) == (
        f"s3:// blob stores need s3fs>={MINIMUM['s3fs']}, but s3fs 0.4.2 is installed: "
        f'pip install -U "cascade-fsspec[s3]" (or "s3fs>={MINIMUM["s3fs"]}")'
    )


def test_the_cli_says_so_in_one_line_with_exit_2(tmp_path):
    pytest.importorskip("s3fs")
    fake = _fake_distribution(tmp_path / "old", "s3fs", "0.4.2")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-m", "cascade_core", "blobs", "du", "--blobs", "s3://bucket/prefix"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: s3:// blob stores need s3fs>={MINIMUM['s3fs']}, but s3fs 0.4.2 is installed: "
        f'pip install -U "cascade-fsspec[s3]" (or "s3fs>={MINIMUM["s3fs"]}")'
    ]


def test_a_supported_s3fs_passes_the_check(tmp_path, monkeypatch):
    pytest.importorskip("s3fs")
    monkeypatch.syspath_prepend(str(_fake_distribution(tmp_path, "s3fs", MINIMUM["s3fs"])))
    spec = blob_refs.resolve_blobs("s3://bucket/prefix?endpoint_url=http://127.0.0.1:9")
    assert spec is not None and type(spec.store).__name__ == "FsspecBlobStore"


def test_versions_compare_by_release_numbers():
    assert release("0.4.2") < release("2023.1.0") <= release("2023.1.0.post1") < release("2023.12.2")
    assert release("2025.5.0rc1") == (2025, 5, 0)


def test_an_unknown_option_names_it_and_the_known_ones(s3_bucket):
    with pytest.raises(cs.InvalidURIError) as info:
        blob_refs.resolve_blobs(s3_bucket + "&bogus=1")
    message = str(info.value)
    assert info.value.key == "bogus"
    assert message.startswith("unknown option 'bogus' in s3://") and ": s3:// blob stores take " in message
    for known in ("anon", "endpoint_url", "profile", "region", "threshold", "timeout"):
        assert known in message.partition("blob stores take ")[2].split(", ")
    # The known ones still work, converted where cascade-fsspec converts them.
    spec = blob_refs.resolve_blobs(s3_bucket + "&region=us-east-1&timeout=5&anon=false")
    assert spec is not None and spec.store.put("sha256:" + "0" * 64, b"x") is True


def test_an_unknown_option_is_exit_2_from_the_cli(s3_bucket, tmp_path):
    for command in (["blobs", "du", "--blobs"], ["run", "flow.py:pipeline", "--blobs"]):
        (tmp_path / "flow.py").write_text(
            "import cascade_core as cs\n\n@cs.task\ndef one():\n    return 1\n\npipeline = one\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "cascade_core", *command, s3_bucket + "&bogus=1"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "TypeError" not in done.stderr
        assert "unknown option 'bogus' in s3://" in done.stderr and "endpoint_url" in done.stderr
