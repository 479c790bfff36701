"""cascade-dask builds into a wheel of its own, with the entry points cascade-core discovers."""

from __future__ import annotations

import zipfile


def test_the_wheel_declares_the_dask_executors(build_wheel, tmp_path):
    with zipfile.ZipFile(build_wheel("cascade_dask", tmp_path)) as archive:
        names = archive.namelist()
        (metadata,) = [archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA")]
        (entry_points,) = [archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "cascade_dask/py.typed" in names
    required = sorted(
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist")
    )
    assert required == ["cascade-core>=0.1", "distributed>=2024.1"]
    assert entry_points.split("[cascade.backends]", 1)[1].split()[:9] == [
        "dask", "=", "cascade_dask.provider:provider", "[executor]",
        "dask+local", "=", "cascade_dask.provider:provider", "[executor]", "dask+tls",
    ]  # fmt: skip
