"""The docs suffice: a ``dir://`` backend written from docs/plugins.md and docs/backends.md alone
(tests/plugins/dirstore, importing only ``cascade_core.plugin``) installs, passes the
conformance kit, and serves runs and the CLI. And the kit stops at once on a plugin that does
not load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KIT = [sys.executable, "-m", "pytest", "--pyargs", "cascade_core.testing", "-q", "-rs", "-W", "error"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """tests/plugins/dirstore and tests/plugins/broken, pip-installed (real entry-point metadata)."""
    site = tmp_path_factory.mktemp("dir-site")
    build = tmp_path_factory.mktemp("dir-src")
    for name in ("dirstore", "broken"):
        shutil.copytree(ROOT / "tests" / "plugins" / name, build / name)  # no build/ in the repository
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--disable-pip-version-check", "--target", str(site), str(build / "dirstore"), str(build / "broken")],
        check=True,
        capture_output=True,
        text=True,
    )
    return site


def run(site: Path, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    env.pop("CASCADE_TEST_IMPORT_LOG", None)
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def last_counts(output: str) -> dict[str, int]:
    summary = output.strip().splitlines()[-1]
    return {word: int(number) for number, word in (part.split()[:2] for part in summary.split(" in ")[0].split(", "))}


@pytest.mark.slow
def test_a_dir_backend_written_from_the_docs_passes_the_kit(site, tmp_path):
    # Three slashes: relative to the working directory, as for sqlite://.
    result = run(site, [*KIT, "-p", "no:cacheprovider", "--cascade-uri", "dir:///store"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = last_counts(result.stdout)
    assert counts["passed"] >= 35 and "failed" not in counts and "error" not in counts, counts
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    # It implements RunCatalog, CacheCatalog and timestamps; Leases, TaskRecords, EntryCount, LimitStore are not.
    assert skips and all(
        "optional capability: no Leases" in s
        or "no LimitStore" in s
        or "no task records" in s
        or "no EntryCount" in s
        or "provides no executor" in s
        or "provides no blobs" in s
        for s in skips
    ), skips
    assert sorted(os.listdir(tmp_path / "store")) == [".lock", "cache", "runs"]


def test_the_dir_backend_serves_runs_and_the_cli(site, tmp_path):
    store = tmp_path / "abs-store"
    uri = f"dir:///{store}"  # four slashes: absolute
    assert uri.startswith("dir:////")
    flow = tmp_path / "flow.py"
    flow.write_text(
        "import sys\n"
        "import cascade_core as cs\n\n"
        "@cs.task(cache=True)\n"
        "def square(x):\n"
        "    with open(sys.argv[1], 'a') as log:\n"
        "        log.write(f'{x}\\n')\n"
        "    return x * x\n\n"
        "@cs.task\n"
        "def total(values):\n"
        "    return sum(values)\n\n"
        f"uri = {uri!r}\n"
        "target = total([square(i) for i in range(4)])\n"
        "print(cs.run(target, state_backend=uri, cache_backend=uri, run_id=sys.argv[2]))\n"
    )
    log = tmp_path / "executions.log"
    first = run(site, [sys.executable, str(flow), str(log), "r1"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "14\n"
    assert sorted(log.read_text().split()) == ["0", "1", "2", "3"]
    # The same run id resumes from the stored state; a new run id takes the squares from the cache.
    for run_id in ("r1", "r2"):
        again = run(site, [sys.executable, str(flow), str(log), run_id], cwd=tmp_path)
        assert (again.returncode, again.stdout) == (0, "14\n"), again.stderr
    assert len(log.read_text().split()) == 4
    listed = run(site, [sys.executable, "-m", "cascade_core", "runs", "list", "--state", uri, "--json"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    runs = {row["run_id"]: row for row in json.loads(listed.stdout)}
    assert set(runs) == {"r1", "r2"}


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("broken://x", "ERROR: --cascade-uri: backend plugin for broken:// from cascade-plugin-broken 0.0.1 failed"),
        ("dir://host/store", "ERROR: --cascade-uri: a dir:// URI has no host: write 'dir:///host/store' (relative)"),
    ],
)
def test_the_kit_stops_at_once_on_a_plugin_that_does_not_load(site, tmp_path, uri, expected):
    result = run(site, [*KIT, "-p", "no:cacheprovider", "--cascade-uri", uri], cwd=tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_the_kit_stops_at_once_on_a_store_that_does_not_answer(tmp_path):
    # redis connects lazily: the kit's one probe read finds the dead port, instead of 49 failing tests.
    pytest.importorskip("cascade_redis")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    uri = f"redis://:pa55word@127.0.0.1:{port}/0?retries=0&socket_connect_timeout=1"
    result = subprocess.run(
        [*KIT, "-p", "no:cacheprovider", "--cascade-uri", uri],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    lines = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ERROR: --cascade-uri: redis at redis://:***@127.0.0.1:{port}/0"), lines
    assert "pa55word" not in output
