"""``cs.explain`` and ``cascade explain``: what a run would do, node by node, and why; and
``cascade runs show ID --why NODE``: why a node of a past run ran."""

from __future__ import annotations

import json
import textwrap

import pytest
from cascade_test_cli import cli

import cascade_core as cs

executions: list[str] = []


@cs.task(name="ex.load", cache=True)
def load(i):
    executions.append("load")
    return i * 10


@cs.task(name="ex.total", cache=True)
def total(values, bonus=0):
    executions.append("total")
    return sum(values) + bonus


@cs.task(name="ex.show")
def show(value):
    executions.append("show")
    return f"total={value}"


def pipeline(n=3, bonus=0):
    return show(total([load(i) for i in range(n)], bonus))


@pytest.fixture
def stores(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    return {"state_backend": uri, "cache_backend": uri}


def _predicted(explanation):
    return [(node.task, node.prediction, node.cause) for node in explanation.nodes]


def test_a_cold_graph_would_run_and_a_warm_one_comes_from_the_cache(stores):
    cold = cs.explain(pipeline(), **stores)
    assert _predicted(cold) == [
        ("ex.load", "run", "no entry"),
        ("ex.load", "run", "no entry"),
        ("ex.load", "run", "no entry"),
        ("ex.total", "run", "upstream reran"),
        ("ex.show", "run", "not cached"),
    ]
    assert cold.nodes[3].changed == ["ex.load"]
    assert executions == []  # nothing ran
    executions.clear()
    cs.run(pipeline(), **stores)
    warm = cs.explain(pipeline(), **stores)
    assert warm.counts() == {"resume": 0, "cache": 4, "run": 1, "not needed": 0, "unknown": 0}
    executions.clear()
    cs.run(pipeline(), **stores)
    assert executions == ["show"]


def test_a_changed_argument_is_named(stores):
    cs.run(pipeline(), **stores)
    explanation = cs.explain(pipeline(bonus=5), **stores)
    total_node = explanation.nodes[3]
    assert (total_node.prediction, total_node.cause, total_node.changed) == ("run", "inputs changed", ["bonus"])
    assert total_node.reason == "inputs changed: bonus"
    assert [node.prediction for node in explanation.nodes[:3]] == ["cache"] * 3  # its inputs' values


def test_an_entry_gone_since_is_expired_and_a_resume_is_predicted(stores):
    cs.run(pipeline(), **stores, run_id="r1")
    explanation = cs.explain(pipeline(), **stores)
    key = explanation.nodes[3].key
    assert key is not None and key.startswith("ex.total:")
    from cascade_core._plugins.registry import registry
    from cascade_core._uri import BackendURI

    cache = registry.cache_backend(BackendURI.parse(stores["cache_backend"]))
    try:
        assert cache.delete_many([key]) == 1
    finally:
        cache.close()
    after = cs.explain(pipeline(), **stores)
    assert [(node.prediction, node.cause) for node in after.nodes[2:4]] == [("cache", None), ("run", "expired")]
    assert after.nodes[3].reason == "its entry (stored by run r1) is gone: expired or removed"
    resumed = cs.explain(pipeline(), **stores, run_id="r1")
    assert resumed.counts()["resume"] == 5  # the run's state holds every result


def test_a_cached_node_below_an_uncached_one_is_unknown(stores):
    @cs.task(name="ex.after", cache=True)
    def after(text):
        return text.upper()

    explanation = cs.explain(after(show(1)), **stores)
    assert _predicted(explanation) == [("ex.show", "run", "not cached"), ("ex.after", "unknown", "key after upstream")]
    assert explanation.nodes[1].reason == "its cache key needs the value of ex.show, computed first"


FLOW = """
import cascade_core as cs


@cs.task(cache=True)
def square(x):
    return x * x


@cs.task
def report(value):
    return value


def pipeline(n: int = 2):
    return report(square(n))
"""


def test_the_command_prints_a_table_json_a_mermaid_graph_and_why_a_node_ran(tmp_path):
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    first = cli(tmp_path, "explain", "flow.py:pipeline")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == "2 tasks: 2 would run"
    assert "no cache entry for its key" in first.stdout
    assert not (tmp_path / ".cascade.db").exists()  # nothing written
    assert cli(tmp_path, "run", "flow.py:pipeline", "--run-id", "a", "--no-progress").returncode == 0
    data = json.loads(cli(tmp_path, "explain", "flow.py:pipeline", "-p", "n=3", "--json").stdout)
    assert data["counts"] == {"resume": 0, "cache": 0, "run": 2, "not needed": 0, "unknown": 0}
    assert [(n["prediction"], n["cause"], n["changed"]) for n in data["nodes"]] == [
        ("run", "inputs changed", ["x"]),
        ("run", "not cached", []),
    ]
    graph = cli(tmp_path, "explain", "flow.py:pipeline", "--run-id", "a", "--graph", "mermaid").stdout
    assert graph.startswith("flowchart LR\n")
    assert 'legend_resumed["↺ resumed (stored in the run)"]' in graph
    assert "class n0,n1,legend_resumed resumed" in graph
    mixed = cli(tmp_path, "explain", "flow.py:pipeline", "--graph", "mermaid").stdout
    assert 'legend_executed["✓ would run"]' in mixed and "class n1,legend_executed executed" in mixed
    assert cli(tmp_path, "run", "flow.py:pipeline", "-p", "n=3", "--run-id", "b", "--no-progress").returncode == 0
    shown = json.loads(cli(tmp_path, "runs", "show", "b", "--json").stdout)
    square_id = next(t["node_id"] for t in shown["tasks"] if t["task"] == "flow.square")
    why = cli(tmp_path, "runs", "show", "b", "--why", square_id[:8])
    assert why.returncode == 0, why.stderr
    assert why.stdout == f"flow.square [{square_id[:12]}] in run b: done: inputs changed: x\n"
    bad = cli(tmp_path, "runs", "show", "b", "--why", "zzzz")
    assert bad.returncode == 2
    assert bad.stderr == "error: no node of run b with an id starting 'zzzz': 'cascade runs show b' lists its nodes\n"
    pictured = cli(tmp_path, "runs", "show", "b", "--why", square_id[:8], "--graph", "mermaid")
    assert (pictured.returncode, pictured.stderr) == (
        2,
        "error: --why prints one node's cause: leave out --graph and --html\n",
    )
    both = cli(tmp_path, "explain", "flow.py:pipeline", "--json", "--graph", "mermaid")
    assert (both.returncode, both.stderr) == (2, "error: --json and --graph are two outputs: give one\n")
