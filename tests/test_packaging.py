"""Each distribution builds into its own wheel with the metadata its users rely on."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest


def _wheel(build_wheel, tmp_path: Path, project: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(build_wheel(project, tmp_path))


def _read(archive: zipfile.ZipFile, suffix: str) -> str:
    (name,) = [name for name in archive.namelist() if name.endswith(suffix)]
    return archive.read(name).decode()


@pytest.mark.parametrize(
    ("project", "requires", "schemes"),
    [
        ("cascade_core", {"pluggy"}, {"memory", "sqlite", "threads", "inline", "file"}),
        (
            "cascade_redis",
            {"cascade-core", "redis"},
            {"redis", "rediss", "redis+unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"},
        ),
    ],
)
def test_wheel_metadata(build_wheel, tmp_path, project, requires, schemes):
    with _wheel(build_wheel, tmp_path, project) as archive:
        metadata = _read(archive, ".dist-info/METADATA")
        entry_points = _read(archive, ".dist-info/entry_points.txt")
        assert any(name.endswith("py.typed") for name in archive.namelist())
    required = {
        line.split(":", 1)[1].strip().split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert required == requires
    section = entry_points.split("[cascade.backends]", 1)[1].split("\n[", 1)[0]
    declared = {line.split("=", 1)[0].strip() for line in section.splitlines() if "=" in line}
    assert declared == schemes
    if project == "cascade_core":
        assert "cascade = cascade_core.cli:main" in entry_points and "[pytest11]" in entry_points
    else:
        assert "Provides-Extra: hiredis" in metadata
