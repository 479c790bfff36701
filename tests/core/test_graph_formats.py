"""``cs.graph``: Mermaid, DOT and JSON text of a lazy graph, collapse of large graphs, and the Jupyter view."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import cascade_core as cs

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "graph-schema.json").read_text())


@cs.task(cache=True)
def fetch(i: int) -> int:
    return i


@cs.task
def double(x: int) -> int:
    return 2 * x


@cs.task
def merge(xs: list) -> int:
    return sum(xs)


@cs.task
def announce() -> None:
    return None


def small():
    """fetch x3 -> merge -> double, with announce ordered before merge."""
    start = announce()
    return double(merge([fetch(i) for i in range(3)]).after(start))


def validate(text: str) -> dict:
    data = json.loads(text)
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    return data


def test_mermaid_draws_one_node_per_call_with_edges_targets_and_cacheable_tasks():
    text = cs.graph(small())
    assert isinstance(text, str) and text.startswith("flowchart LR\n")
    nodes = dict(re.findall(r'^  (n\d+)[\[(]"([^"]*)"[\])]$', text, re.M))
    names = sorted(label.split(" · ")[0] for label in nodes.values())
    assert names == ["announce", "double", "fetch", "fetch", "fetch", "merge"]
    assert all(re.fullmatch(r"\w+ · [0-9a-f]{8}", label) for label in nodes.values())
    by_name = {label.split(" · ")[0]: key for key, label in nodes.items()}
    assert len(re.findall(rf"^  n\d+ --> {by_name['merge']}$", text, re.M)) == 3  # data edges
    assert re.search(rf"^  {by_name['announce']} -.-> {by_name['merge']}$", text, re.M)  # .after(): dashed
    assert re.search(rf"^  {by_name['merge']} --> {by_name['double']}$", text, re.M)
    assert f"  class {by_name['double']} target" in text
    assert len(re.findall(r'^  n\d+\("fetch', text, re.M)) == 3  # cacheable: rounded
    assert re.search(r'^  n\d+\["merge', text, re.M)


def test_dot_is_valid_graphviz_text_with_the_same_nodes_and_edges():
    text = cs.graph(small(), format="dot")
    assert text.startswith("digraph cascade {") and text.rstrip().endswith("}")
    assert len(re.findall(r"^  n\d+ \[label=", text, re.M)) == 6
    assert len(re.findall(r"^  n\d+ -> n\d+", text, re.M)) == 5
    assert text.count("peripheries=2") == 2  # the target, and the legend's example of a target
    assert len(re.findall(r'style="filled,rounded"', text)) == 4  # three fetches and the legend's example
    assert len(re.findall(r"-> n\d+ \[style=dashed\]", text)) == 1
    if shutil.which("dot"):
        checked = subprocess.run(["dot", "-Tcanon"], input=text, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr


def test_json_matches_the_documented_schema():
    data = validate(cs.graph(small(), format="json"))
    assert (data["format"], data["version"], data["calls"], data["collapsed"], data["run"]) == (
        "cascade-graph",
        1,
        6,
        False,
        None,
    )
    tasks = sorted(node["task"].rpartition(".")[2] for node in data["nodes"])
    assert tasks == ["announce", "double", "fetch", "fetch", "fetch", "merge"]
    assert {node["status"] for node in data["nodes"]} == {"planned"}
    keys = {node["key"]: node for node in data["nodes"]}
    assert [keys[e["source"]]["label"] for e in data["edges"] if e["order_only"]] == ["announce"]
    (target,) = [node for node in data["nodes"] if node["target"]]
    assert target["label"] == "double" and len(target["node_id"]) == 32
    assert all(node["cacheable"] == (node["label"] == "fetch") for node in data["nodes"])


@pytest.mark.slow  # a few seconds: builds a 100,001-call graph twice
def test_a_fan_out_of_100k_calls_collapses_into_a_handful_of_nodes():
    target = merge([double(fetch(i)) for i in range(50_000)])  # 100,001 task calls
    data = validate(cs.graph(target, format="json"))
    assert data["calls"] == 100_001 and data["collapsed"] is True
    assert [(n["label"], n["calls"], n["node_id"] is None) for n in data["nodes"]] == [
        ("fetch", 50_000, True),
        ("double", 50_000, True),
        ("merge", 1, False),
    ]
    assert [(e["source"], e["target"], e["calls"]) for e in data["edges"]] == [
        ("n0", "n1", 50_000),
        ("n1", "n2", 50_000),
    ]
    mermaid = cs.graph(target)
    assert '("fetch ×50000")' in mermaid and '-->|"×50000"|' in mermaid
    assert len(mermaid.splitlines()) < 15


def test_collapse_threshold_and_no_collapse():
    target = merge([fetch(i) for i in range(30)])  # 31 calls
    assert json.loads(cs.graph(target, format="json"))["collapsed"] is False  # under 200
    data = json.loads(cs.graph(target, format="json", collapse=10))
    assert [(n["label"], n["calls"]) for n in data["nodes"]] == [("fetch", 30), ("merge", 1)]
    data = json.loads(cs.graph(merge([fetch(i) for i in range(300)]), format="json", collapse=None))
    assert data["collapsed"] is False and len(data["nodes"]) == 301


def test_a_long_chain_of_one_task_collapses_by_task_name():
    node = fetch(0)
    for _ in range(500):
        node = double(node)  # 500 depths of one task: grouping by depth would leave 501 nodes
    data = validate(cs.graph(node, format="json"))
    assert [(n["label"], n["calls"]) for n in data["nodes"]] == [("fetch", 1), ("double", 500)]
    assert {(e["source"], e["target"], e["calls"]) for e in data["edges"]} == {("n0", "n1", 1), ("n1", "n1", 499)}


def test_bad_format_or_collapse_is_a_one_line_usage_error():
    with pytest.raises(cs.UsageError, match=r"^unknown graph format 'gif': use one of mermaid, dot, json, svg, png$"):
        cs.graph(small(), format="gif")
    with pytest.raises(cs.UsageError, match=r"^collapse must be a whole number >= 1 or None, got 0$"):
        cs.graph(small(), collapse=0)
    with pytest.raises(cs.TargetError):
        cs.graph(42)


def test_params_are_resolved_like_run_does():
    size = cs.Param("size", type=int)
    target = double(size)
    with pytest.raises(cs.ParamError, match="missing param 'size'"):
        cs.graph(target)
    one, two = (json.loads(cs.graph(target, format="json", params={"size": v}))["nodes"][0] for v in (1, "2"))
    assert one["node_id"] != two["node_id"]  # the value enters the node id, as in a run
    # The id drawn is the id a run stores its result under.
    state = cs.MemoryStateBackend("r")
    cs.run(target, params={"size": 1}, state_backend=state)
    assert state.result_ids() == {one["node_id"]}


def test_a_lazy_result_shows_as_mermaid_in_jupyter():
    markdown = small()._repr_markdown_()
    assert markdown.startswith("```mermaid\nflowchart LR\n") and markdown.endswith("```\n")
    assert double(cs.Param("needed"))._repr_markdown_() is None  # cannot be built yet: the plain repr


def test_graph_is_public_and_importing_the_package_does_not_load_the_pictures():
    assert "graph" in cs.__all__
    code = "import sys, cascade_core; print('cascade_core.pictures' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_svg_and_png_without_dot_say_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without Graphviz
    for fmt in ("svg", "png"):
        with pytest.raises(cs.UsageError) as caught:
            cs.graph(small(), format=fmt)
        assert str(caught.value) == (
            f"drawing {fmt} needs Graphviz's 'dot' program, which is not on PATH: install Graphviz "
            "(apt-get install graphviz, brew install graphviz or conda install graphviz), "
            "or ask for mermaid, dot or json"
        )
    assert cs.graph(small(), format="dot").startswith("digraph")  # text formats need nothing


def test_svg_and_png_through_dot(require_dot):
    svg = cs.graph(small(), format="svg")
    assert isinstance(svg, str) and "<svg" in svg and svg.count('class="node"') >= 6
    png = cs.graph(small(), format="png")
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.fixture
def require_dot():
    if shutil.which("dot") is None:
        message = "Graphviz's dot is not on PATH (apt-get install graphviz)"
        if os.environ.get("CASCADE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message}; CASCADE_REQUIRE_BROWSER=1 requires it", pytrace=False)
        pytest.skip(message)
