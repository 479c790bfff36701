"""A result stored by reference in a blob store is marked so in the pictures and its record
gives the result's own size, not the reference's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

FLOW = """
import cascade_core as cs

@cs.task
def big():
    return b"x" * 50_000

@cs.task
def small(data):
    return len(data)

def pipeline():
    return small(big())
"""


def cascade(cwd, *args):
    return subprocess.run([sys.executable, "-m", "cascade_core", *args], cwd=cwd, capture_output=True, text=True)


def test_a_result_stored_by_reference_is_marked(tmp_path):
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    store = ["--state", "sqlite:///runs.db", "--cache", "sqlite:///runs.db"]
    blobs = f"file://{tmp_path / 'blobs'}?threshold=1KiB"
    done = cascade(tmp_path, "run", "flow.py:pipeline", *store, "--blobs", blobs, "--run-id", "r", "--no-progress")
    assert done.returncode == 0, done.stderr
    graph = ["graph", "flow.py:pipeline", "--run-id", "r", "--state", "sqlite:///runs.db"]
    shown = cascade(tmp_path, *graph, "-f", "json")
    assert shown.returncode == 0, shown.stderr
    nodes = {node["label"]: node for node in json.loads(shown.stdout)["nodes"]}
    assert nodes["big"]["blob"].startswith("sha256:") and nodes["big"]["size"] > 50_000
    assert nodes["small"]["blob"] is None and nodes["small"]["size"] < 1024
    blob_file = tmp_path / "blobs" / "sha256" / nodes["big"]["blob"][7:9] / nodes["big"]["blob"][9:11]
    assert (blob_file / nodes["big"]["blob"][7:]).exists()
    mermaid = cascade(tmp_path, *graph, "-f", "mermaid")
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.count("by reference") == 1
