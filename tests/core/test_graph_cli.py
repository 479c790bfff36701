"""``cascade graph`` and ``cascade runs show --graph/--html`` on a failed and resumed sqlite run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "graph-schema.json").read_text())

FLOW = """
import os

import cascade_core as cs


@cs.task(cache=True)
def load(i: int) -> str:
    return "x" * (100 * (i + 1))


@cs.task(cache=True)
def measure(text: str) -> int:
    return len(text)


@cs.task
def check(sizes: list) -> int:
    if os.path.exists("fail.flag"):  # outside the graph: the resumed run has the same node ids
        with open("fail.flag") as flag:
            raise ValueError(flag.read())
    return sum(sizes)


@cs.task
def publish(total: int) -> str:
    return f"total={total}"


def pipeline(n: int = 3):
    return publish(check([measure(load(i)) for i in range(n)]))
"""

STATE = "sqlite:///runs.db"
STORE = ["--state", STATE, "--cache", STATE]
HOSTILE = '<script>alert("x")</script> & "quotes" </title><img src=http://example.com/x.png>'
FILLS = {"executed": "#009E73", "cached": "#56B4E9", "resumed": "#0072B2", "failed": "#D55E00"}
FILLS.update({"skipped": "#F0E442", "not_reached": "#DDDDDD", "planned": "#FFFFFF"})


ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "h1",
    "h2",
    "code",
    "span",
    "dl",
    "dt",
    "dd",
}
ALLOWED_TAGS |= {"div", "section", "p", "pre", "table", "thead", "tbody", "tr", "th", "td", "footer", "ul", "li"}
ALLOWED_TAGS |= {"svg", "g", "a", "polygon", "path", "text", "ellipse", "polyline"}  # what dot draws


class Tags(HTMLParser):
    """Every tag name and attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes.extend(attrs)


def cli(cwd: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE")}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], cwd=cwd, env=env, capture_output=True, timeout=120
    )


def ok(cwd: Path, *args: str, path: str | None = None) -> str:
    done = cli(cwd, *args, path=path)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def graph_json(cwd: Path, *args: str) -> dict:
    data = json.loads(ok(cwd, *args))
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    return data


def statuses(data: dict) -> Counter:
    return Counter((node["label"], node["status"]) for node in data["nodes"])


def dot_fills(dot: str) -> dict[str, str]:
    """node id -> fill colour, read from the DOT text (the tooltip holds the full node id)."""
    return dict(
        (m.group(2), m.group(1))
        for m in re.finditer(r'fillcolor="(#[0-9A-F]{6})".*?tooltip="[\w.]+ \[([0-9a-f]{32})\]', dot)
    )


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


@pytest.fixture
def failed_run(flow: Path) -> Path:
    """Run ``r`` failed in ``check`` with a hostile error text."""
    (flow / "fail.flag").write_text(HOSTILE)
    assert cli(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "r", "--no-progress").returncode == 1
    return flow


def require_dot() -> None:
    if shutil.which("dot") is None:
        message = "Graphviz's dot is not on PATH (apt-get install graphviz)"
        if os.environ.get("CASCADE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message}; CASCADE_REQUIRE_BROWSER=1 requires it", pytrace=False)
        pytest.skip(message)


def test_graph_without_a_run_prints_mermaid(flow):
    text = ok(flow, "graph", "flow.py:pipeline", "--param", "n=2")
    assert text.startswith("flowchart LR\n")
    assert len(re.findall(r'^  n\d+[\[(]"', text, re.M)) == 6  # 2 loads, 2 measures, check, publish
    assert "classDef planned" in text and "subgraph legend" not in text


@pytest.mark.slow  # three runs and six drawings, each a process
def test_colours_follow_a_failed_then_resumed_run_and_a_warm_one(failed_run):
    flow = failed_run
    graph = ["graph", "flow.py:pipeline", "--run-id", "r", "--state", STATE]
    data = graph_json(flow, *graph, "--format", "json")
    assert statuses(data) == Counter(
        {("load", "executed"): 3, ("measure", "executed"): 3, ("check", "failed"): 1, ("publish", "skipped"): 1}
    )
    (check,) = [node for node in data["nodes"] if node["label"] == "check"]
    assert check["text"] == f"ValueError: {HOSTILE}"
    (publish,) = [node for node in data["nodes"] if node["label"] == "publish"]
    assert publish["text"] == "upstream failed: flow.check"
    assert data["run"]["status"] == "failed" and data["run"]["counts"]["failed"] == 1
    fills = dot_fills(ok(flow, *graph, "--format", "dot"))
    assert fills[check["node_id"]] == FILLS["failed"] and fills[publish["node_id"]] == FILLS["skipped"]
    assert Counter(fills.values()) == Counter({FILLS["executed"]: 6, FILLS["failed"]: 1, FILLS["skipped"]: 1})

    # Resumed with the cause gone: what the first attempt stored is "resumed", the rest ran.
    (flow / "fail.flag").unlink()
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "r", "--no-progress")
    data = graph_json(flow, *graph, "-f", "json")
    assert statuses(data) == Counter(
        {("load", "resumed"): 3, ("measure", "resumed"): 3, ("check", "executed"): 1, ("publish", "executed"): 1}
    )
    assert [entry["status"] for entry in data["legend"]] == ["executed", "resumed"]
    fills = dot_fills(ok(flow, *graph, "-f", "dot"))
    assert Counter(fills.values()) == Counter({FILLS["resumed"]: 6, FILLS["executed"]: 2})

    # A new run is served from the cache; drawn with one more input, the new calls were not reached.
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "w", "--no-progress")
    warm = ["graph", "flow.py:pipeline", "--run-id", "w", "--state", STATE, "-f", "json"]
    assert statuses(graph_json(flow, *warm)) == Counter(
        {("load", "cached"): 3, ("measure", "cached"): 3, ("check", "executed"): 1, ("publish", "executed"): 1}
    )
    assert statuses(graph_json(flow, *warm, "--param", "n=4")) == Counter(
        {("load", "cached"): 3, ("measure", "cached"): 3, ("load", "not_reached"): 1}
        | {("measure", "not_reached"): 1, ("check", "not_reached"): 1, ("publish", "not_reached"): 1}
    )


def test_runs_show_graph_draws_the_stored_run_with_the_edges_its_target_has(failed_run):
    flow = failed_run
    alone = graph_json(flow, "runs", "show", "r", "--state", STATE, "--graph", "json")
    assert statuses(alone)[("check", "failed")] == 1 and len(alone["nodes"]) == 8
    with_target = graph_json(
        flow, "runs", "show", "r", "--state", STATE, "--graph", "json", "--target", "flow.py:pipeline"
    )
    assert alone["edges_known"] is True and with_target["edges_known"] is True
    assert edges_by_id(alone) == edges_by_id(with_target) and len(edges_by_id(alone)) == 7
    assert statuses(with_target) == statuses(alone)
    targets = [[node["node_id"] for node in data["nodes"] if node["target"]] for data in (alone, with_target)]
    assert targets[0] == targets[1] and len(targets[0]) == 1
    mermaid = ok(flow, "runs", "show", "r", "--state", STATE, "--graph", "mermaid")
    assert "%%" not in mermaid and mermaid.count(" --> ") == 7
    # The error text cannot break out of a Mermaid label.
    assert "<script>" not in mermaid and '"quotes"' not in mermaid


def edges_by_id(data: dict) -> set[tuple[str, str]]:
    ids = {node["key"]: node["node_id"] for node in data["nodes"]}
    return {(ids[edge["source"]], ids[edge["target"]]) for edge in data["edges"]}


def test_collapse_options(failed_run):
    flow = failed_run
    data = graph_json(
        flow, "graph", "flow.py:pipeline", "--run-id", "r", "--state", STATE, "-f", "json", "--collapse", "4"
    )
    assert [(n["label"], n["calls"], n["statuses"]) for n in data["nodes"]] == [
        ("load", 3, {"executed": 3}),
        ("measure", 3, {"executed": 3}),
        ("check", 1, {"failed": 1}),
        ("publish", 1, {"skipped": 1}),
    ]
    mermaid = ok(flow, "graph", "flow.py:pipeline", "--run-id", "r", "--state", STATE, "--collapse", "4")
    assert '("load ×3<br/>✓3")' in mermaid and '-->|"×3"|' in mermaid
    data = graph_json(flow, "graph", "flow.py:pipeline", "-f", "json", "--no-collapse", "--param", "n=300")
    assert data["collapsed"] is False and len(data["nodes"]) == 602
    assert len(graph_json(flow, "graph", "flow.py:pipeline", "-f", "json", "--param", "n=300")["nodes"]) == 4


def test_svg_png_and_files_through_dot(failed_run):
    require_dot()
    flow = failed_run
    graph = ["graph", "flow.py:pipeline", "--run-id", "r", "--state", STATE]
    assert ok(flow, *graph, "-o", "g.png") == ""
    assert (flow / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    ok(flow, *graph, "-o", "g.svg")
    svg = (flow / "g.svg").read_text()
    assert svg.count('class="node"') >= 8 and "legend" in svg
    # The failure is on hover, escaped for XML.
    assert "ValueError: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in svg
    assert "<script" not in svg
    ok(flow, *graph, "-o", "g.gv")
    assert (flow / "g.gv").read_text().startswith("digraph cascade {")
    png = cli(flow, *graph, "-f", "png")  # to a pipe: the bytes
    assert png.returncode == 0 and png.stdout.startswith(b"\x89PNG")


def test_without_dot_svg_and_png_say_how_to_install_it_and_the_report_shows_mermaid(failed_run, tmp_path):
    flow = failed_run
    empty = tmp_path / "no-dot"
    empty.mkdir()
    for fmt in ("svg", "png"):
        done = cli(flow, "graph", "flow.py:pipeline", "-f", fmt, path=str(empty))
        assert done.returncode == 2 and done.stdout == b""
        assert done.stderr.decode() == (
            f"error: drawing {fmt} needs Graphviz's 'dot' program, which is not on PATH: install Graphviz "
            "(apt-get install graphviz, brew install graphviz or conda install graphviz), "
            "or ask for mermaid, dot or json\n"
        )
    done = cli(flow, "runs", "show", "r", "--state", STATE, "--graph", "svg", path=str(empty))
    assert done.returncode == 2 and done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr
    ok(flow, "runs", "show", "r", "--state", STATE, "--html", "report.html", path=str(empty))
    page = (flow / "report.html").read_text()
    assert "<svg" not in page and '<pre class="mermaid-source">flowchart LR' in page
    assert "Graphviz's <code>dot</code> program is not installed" in page


def test_the_report_is_self_contained_and_escapes_the_run_data(failed_run):
    flow = failed_run
    out = ok(flow, "runs", "show", "r", "--state", STATE, "--html", "report.html", "--target", "flow.py:pipeline")
    assert out == "wrote report.html: the report of run r\n"
    page = (flow / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page
    tags = Tags()
    tags.feed(page)
    assert tags.names <= ALLOWED_TAGS, tags.names - ALLOWED_TAGS  # no script, img, link, iframe, object
    assert not [attr for attr in tags.attributes if attr[0] in ("src", "href", "xlink:href")]  # nothing to fetch
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;"
    assert page.count(escaped) >= 3  # the header's failure, the timeline's hover, the table (and the graph's hover)
    assert page.count('class="bar ') == 8 and page.count('<tr class="task">') == 8
    if shutil.which("dot"):
        assert page.count("<svg") == 1


def test_usage_errors_are_one_line_with_exit_2(failed_run, monkeypatch, capsys):
    from cascade_core.cli import main

    flow = failed_run
    done = cli(flow, "graph", "flow.py:pipeline", "--run-id", "nope", "--state", STATE)
    assert (done.returncode, done.stderr.decode()) == (
        2,
        f"error: no run 'nope' in {STATE}: 'cascade runs list --state URI' shows the stored runs\n",
    )
    monkeypatch.chdir(flow)  # the cases below fail before the target is imported: in this process
    cases = {
        ("graph", "flow.py:pipeline", "-o", "graph.txt"): (
            "error: cannot tell the format from 'graph.txt': add --format (mermaid, dot, json, svg, png)"
        ),
        ("runs", "show", "r", "--state", STATE, "--graph", "dot", "--json"): (
            "error: --json cannot be combined with --graph or --html: use --graph json"
        ),
        ("runs", "show", "r", "--state", STATE, "--graph", "dot", "-p", "n=2"): (
            "error: --param needs --target: they rebuild the run's graph to draw its edges"
        ),
        ("runs", "show", "r", "--state", STATE, "--html", "x.html", "-o", "g.svg"): (
            "error: -o/--output writes the graph: add --graph FORMAT (the report goes to --html FILE)"
        ),
        ("runs", "show", "r", "--state", STATE, "--html", str(flow / "missing" / "r.html")): (
            f"error: cannot write {flow / 'missing' / 'r.html'}: No such file or directory"
        ),
        ("runs", "show", "r", "--state", STATE, "--target", "flow.py:pipeline"): (
            "error: --target is for pictures: add --graph FORMAT or --html FILE"
        ),
        ("runs", "show", "r", "--state", STATE, "--no-collapse"): (
            "error: --collapse/--no-collapse is for pictures: add --graph FORMAT or --html FILE"
        ),
        ("graph", "flow.py:pipeline", "--html", "x.html"): None,
        ("graph", "flow.py:pipeline", "--format", "gif"): None,
        ("graph", "flow.py:pipeline", "--collapse", "0"): None,
        ("graph", "flow.py:pipeline", "--collapse", "5", "--no-collapse"): None,
    }
    for args, message in cases.items():
        assert main(list(args)) == 2, args
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), args
        assert captured.out == "" or "--json" in args  # --json: the error as JSON on stdout too
        if message is not None:
            assert captured.err == message + "\n"
    assert not (flow / "x.html").exists()


def test_a_graph_that_matches_no_record_of_the_run_warns(failed_run):
    done = cli(failed_run, "graph", "flow.py:pipeline", "--run-id", "r", "--state", STATE, "-p", "n=0")
    assert done.returncode == 0
    assert done.stderr.decode() == (
        "warning: no task of this graph is in run r: pass the --param values the run was started with\n"
    )


WIDE = """
import cascade_core as cs


@cs.task(cache=True)
def fetch(i: int) -> int:
    return i


@cs.task
def parse(x: int) -> int:
    return x


@cs.task
def merge(xs: list) -> int:
    return sum(xs)


def fan(n: int = 50_000):
    return merge([parse(fetch(i)) for i in range(n)])
"""


@pytest.mark.slow  # a sanity bound, generous for a loaded machine (goals: 5 s and 1 s; see docs/cli.md)
def test_large_graphs_draw_in_reasonable_time(tmp_path):
    import time

    (tmp_path / "wide.py").write_text(WIDE)
    started = time.perf_counter()
    text = ok(tmp_path, "graph", "wide.py:fan")  # 100,001 calls, collapsed
    assert time.perf_counter() - started < 30
    assert '("fetch ×50000")' in text and len(text.splitlines()) < 15
    started = time.perf_counter()
    dot = ok(tmp_path, "graph", "wide.py:fan", "-p", "n=1000", "--no-collapse", "-f", "dot")  # 2,001 calls
    assert time.perf_counter() - started < 10
    assert len(re.findall(r"^  n\d+ \[label=", dot, re.M)) == 2001
