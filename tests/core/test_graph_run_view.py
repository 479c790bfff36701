"""How stored run data becomes picture statuses, timeline bars and report rows (no processes, no browser)."""

from __future__ import annotations

import json
import re

import cascade_core as cs
from cascade_core._graph import build_graph
from cascade_core.pictures import RunView, draw, from_graph, from_run
from cascade_core.pictures.report import report_html
from cascade_core.pictures.timeline import bars

INFO = {"status": "succeeded", "driver": "host a pid 1", "driver_started": "2026-11-30T10:00:10.000+00:00"}


def record(task: str, status: str, finished: str, duration: float = 0.5, **extra: object) -> str:
    return json.dumps({"task": task, "status": status, "duration": duration, "finished": finished, **extra})


def test_records_become_statuses():
    raw = {
        "run-here": record("m.a", "done", "2026-11-30T10:00:11.000+00:00", size=10),
        "earlier": record("m.a", "done", "2026-11-30T10:00:05.000+00:00"),
        "cached": record("m.a", "cached", "2026-11-30T10:00:11.000+00:00", duration=0.0),
        "other": record("m.a", "done", "2026-11-30T10:00:11.000+00:00", driver="host b pid 2"),
        "failed-now": record("m.b", "failed", "2026-11-30T10:00:12.000+00:00", error="ValueError: no"),
        "failed-before": record("m.b", "failed", "2026-11-30T10:00:01.000+00:00", error="KeyError: k"),
        "failed-then-stored": record("m.b", "failed", "2026-11-30T10:00:01.000+00:00", error="E"),
        "skipped": record("m.c", "skipped", "2026-11-30T10:00:12.000+00:00", reason="upstream failed: m.b"),
        "broken": "{not json",
    }
    stored = {"run-here", "earlier", "cached", "other", "failed-then-stored", "stored-only"}
    view = RunView.from_stored("r", INFO, stored, {"reason-only": "upstream failed: m.b"}, raw)
    got = {node_id: (rec.status, rec.text) for node_id, rec in view.records.items()}
    assert got == {
        "run-here": ("executed", None),
        "earlier": ("resumed", None),  # finished before the last attempt started
        "cached": ("cached", None),
        "other": ("other_driver", None),  # the record names another driver
        "failed-now": ("failed", "ValueError: no"),
        "failed-before": ("failed", "earlier attempt: KeyError: k"),
        "failed-then-stored": ("resumed", None),  # a later attempt stored it
        "skipped": ("skipped", "upstream failed: m.b"),
        "broken": ("not_reached", None),  # unreadable, not stored: not known to be done
        "stored-only": ("executed", None),
        "reason-only": ("skipped", "upstream failed: m.b"),
    }
    assert view.status_of("never-seen") == "not_reached"
    assert view.records["run-here"].size == 10 and view.records["broken"].task == "?"


def test_a_run_without_attempt_time_counts_everything_stored_as_executed():
    raw = {"x": record("m.a", "done", "2026-11-30T10:00:05.000+00:00")}
    assert RunView.from_stored("r", {}, {"x"}, {}, raw).records["x"].status == "executed"


def test_the_timeline_has_one_bar_per_task_and_one_per_task_name_above_the_threshold():
    raw = {f"f{i}": record("m.fetch", "done", f"2026-11-30T10:00:{11 + i % 40:02d}.000+00:00") for i in range(150)}
    raw.update({f"s{i}": record("m.sum", "done", "2026-11-30T10:00:59.000+00:00") for i in range(100)})
    raw["bad"] = record("m.sum", "failed", "2026-11-30T10:00:59.500+00:00", error="E: x")
    raw["untimed"] = json.dumps({"task": "m.sum", "status": "done"})
    view = RunView.from_stored("r", INFO, set(raw) - {"bad"}, {}, raw)
    drawn, untimed = bars(view, None)
    assert len(drawn) == 251 and untimed == 1
    drawn, _ = bars(view, 200)
    assert [(bar.label, bar.status) for bar in drawn] == [("fetch ×150", "executed"), ("sum ×101", "failed")]
    page = report_html(view, from_run(view), collapse=200)
    assert page.count('class="bar ') == 2 and 'data-bars="2"' in page
    assert "1 task record(s) without a time are not drawn." in page
    assert page.count('<tr class="task">') == 252


@cs.task
def leaf(i: int) -> int:
    return i


@cs.task
def join(xs: list) -> int:
    return sum(xs)


def test_a_collapsed_node_counts_its_calls_by_status_and_takes_the_worst_colour():
    graph = build_graph(join([leaf(i) for i in range(300)]))
    ids = [node.id for node in graph.nodes]
    raw = {node_id: record("x.leaf", "done", "2026-11-30T10:00:11.000+00:00") for node_id in ids[:297]}
    raw[ids[297]] = record("x.leaf", "failed", "2026-11-30T10:00:11.000+00:00", error="E: 1")
    raw[ids[298]] = record("x.leaf", "failed", "2026-11-30T10:00:11.000+00:00", error="E: 2")
    view = RunView.from_stored("r", INFO, set(ids[:297]), {}, raw)
    picture = from_graph(graph, view)
    leaves, joined = picture.nodes
    assert (leaves.count, leaves.statuses, leaves.status) == (
        300,
        {"executed": 297, "failed": 2, "not_reached": 1},
        "failed",
    )
    assert picture.label_lines(leaves) == ["leaf ×300", "✓297 ✗2 ○1"]
    assert (joined.status, joined.target) == ("not_reached", True)
    dot = draw(picture, "dot")
    assert re.search(r'n0 \[label="leaf ×300\\n✓297 ✗2 ○1", fillcolor="#D55E00"', dot)
    assert 'n0 -> n1 [label="×300"]' in dot


def test_names_that_would_break_a_format_are_escaped():
    view = RunView.from_stored(
        "r<1>",
        {"status": "failed", "error": 'say "hi" <b> & \\ bye\nsecond line', "target": "<t>"},
        set(),
        {},
        {"n": record("m.a", "failed", "2026-11-30T10:00:11.000+00:00", error='say "hi" <b> & \\ bye')},
    )
    picture = from_run(view)
    mermaid = draw(picture, "mermaid")
    assert '"say' not in mermaid and "<b>" not in mermaid
    dot = draw(picture, "dot")
    assert 'tooltip="m.a [n]: failed: say \\"hi\\" <b> &amp; \\\\ bye"' in dot
    page = report_html(view, picture, collapse=200)
    assert "<b>" not in page and "<t>" not in page and "r<1>" not in page
    assert "say &quot;hi&quot; &lt;b&gt; &amp; \\ bye" in page
