"""Pictures and records of dynamic graphs: a map is one box (``square.map ×?`` before the run,
``square ×N`` with its calls' outcomes after), a router is drawn as one, and ``cascade runs
show`` counts mapped calls, routed-away routes and skipped nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import cascade_core as cs
from cascade_core.backends.sqlite import SqliteStateStore
from cascade_core.pictures import RunView, draw, from_graph, from_run
from cascade_core.pictures.folds import FOLD_CALLS


@cs.task(name="dp.listing")
def listing(n: int) -> list:
    return list(range(n))


@cs.task(name="dp.square")
def square(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


@cs.task(name="dp.total")
def total(xs: list) -> int:
    return sum(xs)


@cs.task(name="dp.pick")
def pick() -> str:
    return "a"


@pytest.fixture
def store(tmp_path):
    return SqliteStateStore(tmp_path / "runs.db")


def _view(store: SqliteStateStore, run_id: str) -> RunView:
    backend = store(run_id)
    try:
        return RunView.read(backend)
    finally:
        backend.close()


SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "graph-schema.json").read_text())


def _json(picture) -> dict:
    """The picture's JSON, checked against docs/graph-schema.json."""
    data = json.loads(draw(picture, "json"))
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    return data


def test_a_run_time_map_is_one_node_marked_as_mapped_before_the_run():
    target = total(square.map(listing(4)))
    text = cs.graph(target)
    assert '[["square.map ×?"]]' in text  # Mermaid's subroutine shape: a map
    assert "n0 --> n1" in text and "n1 --> n2" in text  # listing -> map -> total
    dot = cs.graph(target, "dot")
    assert "shape=box3d" in dot and "square.map ×?" in dot and "legend_map" in dot
    data = json.loads(cs.graph(target, "json"))
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)  # calls: null, kind: map
    mapped = [node for node in data["nodes"] if node["kind"] == "map"]
    assert len(mapped) == 1 and mapped[0]["calls"] is None and mapped[0]["task"] == "dp.square"


def test_a_build_time_map_over_many_calls_is_one_box_and_a_small_one_is_not():
    big = cs.graph(total(square.map(list(range(FOLD_CALLS + 30)))), "json")
    nodes = json.loads(big)["nodes"]
    assert [(n["label"], n["calls"], n["kind"]) for n in nodes] == [
        ("square", FOLD_CALLS + 30, "map"),
        ("total", 1, None),
    ]
    assert f'[["square ×{FOLD_CALLS + 30}"]]' in cs.graph(total(square.map(list(range(FOLD_CALLS + 30)))))
    small = json.loads(cs.graph(total(square.map([1, 2, 4])), "json"))["nodes"]
    assert sorted(n["task"] for n in small) == ["cascade.collect", "dp.square", "dp.square", "dp.square", "dp.total"]


def test_the_calls_feeding_a_build_time_map_one_each_are_a_box_of_their_own():
    n = FOLD_CALLS + 5
    data = json.loads(cs.graph(total(square.map(square.map(list(range(n))))), "json"))
    assert [(node["label"], node["calls"]) for node in data["nodes"]] == [("square", n), ("square", n), ("total", 1)]
    assert [edge["calls"] for edge in data["edges"]] == [n, 1]
    # A call read twice (here by two maps) is not folded: it is drawn on its own.
    shared = [listing(i) for i in range(n)]
    drawn = json.loads(cs.graph([total.map(shared), total.map(list(shared))], "json"))["nodes"]
    assert sum(node["task"] == "dp.listing" for node in drawn) == n


def test_a_router_is_drawn_as_a_router_fed_by_its_selector():
    text = cs.graph(cs.Router(pick(), {"a": square(1), "b": square(2)}))
    assert '{{"Router · ' in text and "n0 --> n1" in text
    assert "shape=hexagon" in cs.graph(cs.Router(pick(), {"a": square(1)}), "dot")


def test_a_run_shows_the_map_as_one_box_of_its_calls_with_their_outcomes(store):
    target = total(square.map(listing(6)))
    with pytest.raises(cs.TaskFailed):
        cs.run(target, state_backend=store, run_id="m")
    run = _view(store, "m")
    calls = [record for record in run.records.values() if record.task == "dp.square"]
    map_node = next(record for record in run.records.values() if record.kind == "map")
    assert len(calls) == 6 and {record.parent for record in calls} == {map_node.node_id}
    for picture in (from_run(run), from_graph(_graph(target), run)):
        data = _json(picture)
        box = next(node for node in data["nodes"] if node["kind"] == "map")
        assert (box["label"], box["calls"], box["statuses"], box["status"]) == (
            "square",
            6,
            {"executed": 5, "failed": 1},
            "failed",
        )
        keys = {node["task"]: node["key"] for node in data["nodes"]}
        edges = {(edge["source"], edge["target"]) for edge in data["edges"]}
        assert edges == {(keys["dp.listing"], box["key"]), (box["key"], keys["dp.total"])}
        assert "square ×6<br/>✓5 ✗1" in draw(picture, "mermaid")


FAIL_ON: set[int] = set()


@cs.task(name="dp.flaky")
def flaky(x: int) -> int:
    if x in FAIL_ON:
        raise ValueError(f"{x} failed")
    return x


def test_a_resumed_map_counts_its_resumed_and_executed_calls_and_an_empty_one_is_x0(store):
    FAIL_ON.clear()
    FAIL_ON.add(2)
    target = total(flaky.map(listing(5)))
    with pytest.raises(cs.TaskFailed):
        cs.run(target, state_backend=store, run_id="again")
    FAIL_ON.clear()
    assert cs.run(target, state_backend=store, run_id="again") == 10
    box = next(node for node in _json(from_run(_view(store, "again")))["nodes"] if node["kind"] == "map")
    assert (box["calls"], box["statuses"], box["status"]) == (5, {"executed": 1, "resumed": 4}, "resumed")
    assert cs.run(total(flaky.map(listing(0))), state_backend=store, run_id="empty") == 0
    picture = from_run(_view(store, "empty"))
    text = draw(picture, "mermaid")
    assert '[["flaky ×0"]]' in text and "legend_executed" in text  # no calls: coloured by the map node itself


@cs.task(name="dp.both")
def both(x: int) -> list:
    return [square(x), square(x + 10)]  # a graph: its two calls join the run


def test_graphs_returned_by_mapped_calls_are_inside_the_map_box_and_are_no_nodes_themselves(store):
    assert cs.run(both.map(listing(3)), state_backend=store, run_id="sub") == [[0, 100], [1, 121], [4, 144]]
    run = _view(store, "sub")
    assert "?" not in {record.task for record in run.records.values()}  # the stored <id>.graph are not nodes
    data = _json(from_run(run))
    assert [(n["label"], n["calls"], n["statuses"]) for n in data["nodes"] if n["kind"] == "map"] == [
        ("both", 3, {"executed": 3})
    ]  # the 6 square calls the 3 both calls returned are inside the box, not counted as its calls
    assert len(data["nodes"]) == 2 and data["calls"] == 11  # listing, the map, 3 calls, 6 squares


def _graph(target):
    from cascade_core._build.graph import build_graph

    return build_graph(target)


def test_a_run_alone_draws_the_chosen_route_into_its_router(store):
    cs.run([cs.Router(pick(), {"a": square(5), "b": square(6)})], state_backend=store, run_id="route")
    data = _json(from_run(_view(store, "route")))
    kinds = {node["task"]: node for node in data["nodes"]}
    assert kinds["cascade.Router"]["kind"] == "router" and "dp.square" in kinds
    router = kinds["cascade.Router"]["key"]
    (chosen,) = [n["key"] for n in data["nodes"] if n["task"] == "dp.square" and n["status"] == "executed"]
    data_edges = {(edge["source"], edge["target"]) for edge in data["edges"] if not edge["order_only"]}
    assert data_edges == {(kinds["dp.pick"]["key"], router), (chosen, router)}  # square(6), routed away, never ran
    executed = {node["key"] for node in data["nodes"] if node["status"] == "executed"}
    for edge in data["edges"]:  # an engine that adds the routes it did not choose: skipped, drawn dashed
        if edge["order_only"]:
            assert edge["target"] == router and edge["source"] not in executed


def test_records_without_parent_or_kind_still_draw_every_call(store):
    cs.run(total(square.map(listing(3))), state_backend=store, run_id="old")
    run = _view(store, "old")
    records = {
        node_id: record._replace(parent=None, kind=None) for node_id, record in run.records.items()
    }  # as cascade-core wrote them before it recorded parents
    data = _json(from_run(RunView(run.run_id, run.info, records)))
    assert sorted(node["task"] for node in data["nodes"]) == [
        "dp.listing", "dp.square", "dp.square", "dp.square", "dp.square.map", "dp.total"
    ]  # fmt: skip
    assert all(node["kind"] is None and node["calls"] == 1 for node in data["nodes"])


def test_a_thousand_mapped_calls_are_one_box_not_a_collapse_by_depth(store):
    @cs.task(name="dp.inc")
    def inc(x: int) -> int:
        return x + 1

    cs.run(total(inc.map(listing(1000))), state_backend=store, run_id="k")
    picture = from_run(_view(store, "k"))
    data = _json(picture)
    assert not data["collapsed"] and data["calls"] == 1003
    assert [(n["label"], n["calls"], n["statuses"]) for n in data["nodes"] if n["kind"] == "map"] == [
        ("inc", 1000, {"executed": 1000})
    ]


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE")}
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


FLOW = """
import cascade_core as cs


@cs.task
def listing(n: int) -> list:
    return list(range(n))


@cs.task
def square(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


@cs.task
def pick() -> str:
    return "a"


def pipeline(n: int = 5):
    on = cs.Param("on", default=False, type=bool)
    return [square.map(listing(n)), cs.Router(pick(), {"a": square(10), "b": square(11), "c": square(12)}),
            square(7).run_if(on)]
"""


def test_runs_show_counts_mapped_calls_routed_away_routes_and_skips(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW)
    state = ["--state", "sqlite:///runs.db", "--cache", "sqlite:///runs.db"]
    assert _cli(tmp_path, "run", "flow.py:pipeline", *state, "--run-id", "d", "--no-progress").returncode == 1
    shown = _cli(tmp_path, "runs", "show", "d", "--state", "sqlite:///runs.db")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    rows = json.loads(_cli(tmp_path, "runs", "show", "d", "--state", "sqlite:///runs.db", "--json").stdout)["tasks"]
    assert len(rows) > 6 and f", {len(rows)} tasks (" in lines[0], lines[0]  # 6 at the start, then the added ones
    assert any(line.startswith("map flow.square.map [") and line.endswith(": 5 calls (4 executed, 1 failed)")
               for line in lines), shown.stdout  # fmt: skip
    assert any(line.startswith("router cascade.Router [") and line.endswith(
        ": took a route of 1 new task, 2 of 3 routes routed away") for line in lines), shown.stdout  # fmt: skip
    # The map node waits for its calls: one failed, so it is skipped.
    (skips,) = [line for line in lines if line.startswith("skipped: ")]
    assert "1 run_if condition false: on" in skips and "1 upstream failed: flow.square" in skips, skips
    data = json.loads(_cli(tmp_path, "runs", "show", "d", "--state", "sqlite:///runs.db", "--json").stdout)
    (mapped,) = data["maps"]
    assert mapped["calls"] == 5 and mapped["statuses"] == {"executed": 4, "failed": 1}
    assert data["routers"][0]["routed_away"] == 2 and data["skipped"]["run_if condition false: on"] == 1
    assert sum(task["parent"] == mapped["node_id"] for task in data["tasks"]) == 5
    drawn = _cli(tmp_path, "runs", "show", "d", "--state", "sqlite:///runs.db", "--graph", "mermaid")
    assert '[["square ×5<br/>✓4 ✗1"]]' in drawn.stdout, drawn.stdout


SLOW_MAP = """
import time

import cascade_core as cs


@cs.task
def listing(n: int) -> list:
    time.sleep(0.5)
    return list(range(n))


@cs.task
def square(x: int) -> int:
    time.sleep(0.05)
    return x * x


@cs.task
def total(xs: list) -> int:
    return sum(xs)


def pipeline(n: int = 6):
    return total(square.map(listing(n)))
"""


def test_the_progress_total_grows_when_a_map_expands(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_MAP)
    state = ["--state", "sqlite:///runs.db", "--cache", "sqlite:///runs.db"]
    done = _cli(tmp_path, "run", "slow.py:pipeline", *state, "--progress-interval", "0.1", "-v")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()  # not a terminal: plain lines
    counts = [line for line in lines if " done  " in line]
    # 3 tasks before the map expands (listing, the map, total), 9 after: 6 calls joined the run.
    assert any(line.startswith("0/3 done  1 running") for line in counts), done.stderr
    assert counts[-1].startswith("9/9 done  0 running"), done.stderr  # a map node never "runs"
    assert any(line.endswith("expanded slow.square.map into 6 tasks") for line in lines), done.stderr
