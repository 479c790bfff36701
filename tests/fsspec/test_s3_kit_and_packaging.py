"""cascade-fsspec passes the conformance kit against moto's S3 server, builds its own wheel, and imports
nothing of cascade-core but its public plugin API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cascade_test_plugin_dist import assert_imports_only_the_public_api, loaded_after, run_kit, wheel_parts


def test_s3_blob_store_passes_the_kit(s3_bucket, tmp_path):
    run_kit(s3_bucket, tmp_path, "10 passed")  # refresh_after: one blob test skips


def test_the_wheel_builds_on_its_own_with_its_entry_points(build_wheel, tmp_path):
    names, entries, meta = wheel_parts(build_wheel("cascade_fsspec", tmp_path))
    assert any(n.endswith("cascade_fsspec/py.typed") for n in names)
    for scheme in ("s3", "gs", "gcs", "az", "abfs"):
        assert f"{scheme} = cascade_fsspec.provider:provider [blobs]" in entries
    assert "Requires-Dist: cascade-core" in meta and "Requires-Dist: fsspec" in meta
    assert "Provides-Extra: s3" in meta
    from cascade_fsspec.drivers import DRIVERS, MINIMUM

    # Each extra bounds its driver from below, as the open-time check does (drivers.MINIMUM).
    for _, driver, extra in DRIVERS.values():
        assert f'Requires-Dist: {driver}>={MINIMUM[driver]}; extra == "{extra}"' in meta


ROUND_TRIP = """
import sys
from pathlib import Path

import cascade_core as cs

log = Path(sys.argv[2])


@cs.task
def make() -> bytes:
    with log.open("a") as out:
        out.write("make\\n")
    return b"q" * 300_000


uri = sys.argv[1] + "&threshold=64KiB"
state = "sqlite:///" + str(log.with_name("state.db"))
for _ in range(2):  # the second run reads the stored result back from its blob
    assert cs.run(make(), state_backend=state, blob_store=uri, run_id="r") == b"q" * 300_000
assert log.read_text() == "make\\n", log.read_text()
"""


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _installed(python: Path, name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.slow
def test_the_s3_extra_beside_the_newest_boto3_installs_a_working_s3fs_or_fails_at_install(
    build_wheel, s3_bucket, tmp_path
):
    """Issue #21: pip used to pick s3fs 0.4.2 (no aiobotocore) beside the newest boto3, and the first blob
    failed at run time. Now pip either picks a set that works or refuses at install time."""
    from cascade_fsspec.drivers import MINIMUM, release

    core = build_wheel("cascade_core", tmp_path / "core")
    fsspec = build_wheel("cascade_fsspec", tmp_path / "fsspec")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    together = _pip(python, str(core), f"{fsspec}[s3]", "boto3")  # what users type
    if together.returncode != 0:
        # The newest boto3 needs a botocore that no aiobotocore allows yet: the resolver says so, at install.
        assert "ResolutionImpossible" in together.stderr, together.stderr[-3000:]
        # Then the newest boto3 that the resolved s3fs allows: the extra first, boto3 beside its botocore.
        assert _pip(python, str(core), f"{fsspec}[s3]").returncode == 0
        botocore = _installed(python, "botocore")
        done = _pip(python, "boto3", f"botocore=={botocore}")
        assert done.returncode == 0, done.stderr[-3000:]
    assert release(_installed(python, "s3fs")) >= release(MINIMUM["s3fs"])
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout
    script = tmp_path / "round_trip.py"
    script.write_text(ROUND_TRIP)
    done = subprocess.run(
        [str(python), str(script), s3_bucket, str(tmp_path / "log")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    bucket = s3_bucket.split("/")[2]
    import boto3

    client = boto3.client("s3", endpoint_url=s3_bucket.partition("endpoint_url=")[2], region_name="us-east-1")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sum(key.startswith("blobs/sha256/") for key in keys) == 1, keys


def test_it_imports_only_the_public_plugin_api():
    assert_imports_only_the_public_api("cascade_fsspec")


def test_listing_imports_no_driver():
    code = "from cascade_core._plugins.registry import registry\nregistry.load('s3')"
    assert loaded_after(code, ("fsspec", "s3fs", "botocore")) == []
