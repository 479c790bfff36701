"""The keys of ``cascade blobs du --json`` and ``gc --json`` are the ones docs/cli.md documents,
with the values the store holds (real subprocesses, a sqlite store and a file:// blob store)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

FLOW = """
import cascade_core as cs


@cs.task(cache=True)
def blob(seed: int) -> bytes:
    return bytes([seed]) * 200_000


@cs.task
def size(data: bytes) -> int:
    return len(data)


def pipeline(seed: int = 1):
    return size(blob(seed))
"""


def cascade(cwd: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env["CASCADE_BLOBS"] = f"file://{cwd / 'blobs'}?threshold=64KiB"
    done = subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else {}


def section() -> str:
    text = CLI_DOC.read_text()
    return text[text.index("## cascade blobs du / gc") :].split("\n## ", 1)[0]


def test_du_json_has_the_documented_keys_and_counts_what_the_store_holds(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW)
    cascade(tmp_path, "run", "flow.py:pipeline", "--param", "seed=1", "--no-progress")
    cascade(tmp_path, "run", "flow.py:pipeline", "--param", "seed=2", "--no-progress")
    du = cascade(tmp_path, "blobs", "du", "--json")
    example = json.loads(re.search(r"`du --json` prints\s+`(\{.*?\})`", section(), flags=re.S).group(1))
    assert set(du) == set(example)
    files = [p for p in (tmp_path / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert du == {"blobs": f"file://{tmp_path / 'blobs'}", "count": 2, "bytes": sum(p.stat().st_size for p in files)}
    assert len(files) == 2


def test_gc_json_has_the_documented_keys(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW)
    cascade(tmp_path, "run", "flow.py:pipeline", "--no-progress")
    gc = cascade(tmp_path, "blobs", "gc", "--dry-run", "--json")
    table = section().split("`gc --json` prints one object:", 1)[1].split("\n\n", 2)[1]
    documented = {key for row in table.splitlines()[2:] for key in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert set(gc) == documented
    assert (gc["count"], gc["referenced"], gc["deleted"], gc["dry_run"], gc["not_given"]) == (1, 1, [], True, [])
