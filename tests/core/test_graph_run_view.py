"""How stored run data becomes picture statuses, timeline bars and report rows (no processes, no browser)."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import cascade_core as cs
from cascade_core._build.graph import build_graph
from cascade_core.backends.sqlite import SqliteStateStore
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


# -- what a run stores for its pictures: edges and attempts (issue #21) -----------------------------

CALLS: list[str] = []


@cs.task(cache=True)
def source(i: int) -> int:
    CALLS.append(f"source {i}")
    return i


@cs.task(retries=2)
def flaky(x: int) -> int:
    CALLS.append(f"flaky {x}")
    if x == 1:
        time.sleep(0.01)  # attempts far apart enough to be told apart at the records' millisecond
    if x == 1 and CALLS.count("flaky 1") < 3:
        raise RuntimeError(f"flaky try {CALLS.count('flaky 1')}")
    if x == 2:
        raise ValueError("always bad")
    return x


@cs.task
def tidy() -> int:
    CALLS.append("tidy")
    return 0


@cs.task
def gather(xs: list) -> int:
    return sum(xs)


def workflow() -> cs.LazyResult:
    cleaned = tidy()
    return gather([flaky(source(i)).after(cleaned) if i == 0 else flaky(source(i)) for i in range(4)])


def stored_run(tmp_path, run_id: str = "r") -> RunView:
    store = SqliteStateStore(tmp_path / "r.db")
    CALLS.clear()
    report = cs.Engine(store, "memory://").execute(workflow(), run_id=run_id)
    assert report.status == "failed"
    backend = store(run_id)
    try:
        return RunView.read(backend)
    finally:
        backend.close()


def edge_set(picture) -> set[tuple[str, str, bool]]:
    ids = [node.node_id for node in picture.nodes]
    return {(ids[edge.source], ids[edge.target], edge.order_only) for edge in picture.edges}


def test_a_run_alone_draws_the_edges_of_its_graph(tmp_path):
    view = stored_run(tmp_path)
    graph = build_graph(workflow())
    drawn, rebuilt = from_run(view), from_graph(graph, view)
    assert drawn.edges_known and drawn.unknown_edges == 0
    assert len(drawn.nodes) == len(rebuilt.nodes) == 10
    assert edge_set(drawn) == edge_set(rebuilt) and len(edge_set(drawn)) == 9
    assert sum(order_only for _, _, order_only in edge_set(drawn)) == 1  # the .after(): dashed
    by_id = {node.node_id: node for node in rebuilt.nodes}
    assert {node.node_id: node.depth for node in drawn.nodes} == {i: n.depth for i, n in by_id.items()}
    assert [node.node_id for node in drawn.nodes if node.target] == [graph.nodes[graph.targets[0]].id]
    for fmt in ("mermaid", "dot"):
        assert "not in the run's records" not in draw(drawn, fmt)


def test_a_retried_task_records_each_failed_attempt(tmp_path):
    view = stored_run(tmp_path)
    assert CALLS.count("flaky 1") == 3 and CALLS.count("flaky 2") == 3 and CALLS.count("flaky 0") == 1
    tasks = {record.node_id: record for record in view.records.values()}
    flaky_records = sorted(
        (r for r in tasks.values() if r.task.endswith(".flaky")), key=lambda r: (r.attempts, r.status)
    )
    assert [(r.status, r.attempts) for r in flaky_records] == [
        ("executed", 1),
        ("executed", 1),
        ("executed", 3),
        ("failed", 3),
    ]
    retried, failed = flaky_records[2], flaky_records[3]
    assert [a.error for a in retried.failed_attempts] == ["RuntimeError: flaky try 1", "RuntimeError: flaky try 2"]
    assert [a.error for a in failed.failed_attempts] == ["ValueError: always bad"] * 2 and failed.text == (
        "ValueError: always bad"
    )
    ms = timedelta(milliseconds=1)  # records keep milliseconds
    for attempt in retried.failed_attempts:  # each attempt ended before the next, and the last, began
        assert attempt.duration is not None and attempt.duration >= 0.01 and attempt.finished is not None
        assert attempt.finished <= retried.started + ms
    spans, _ = bars(view, None)
    row = next(bar for bar in spans if bar.label.endswith("↻3") and bar.status == "executed")
    assert len(row.tries) == 2 and row.tries[0][1] <= row.tries[1][0] + ms and row.tries[1][1] <= row.start + ms
    page = report_html(view, from_run(view), collapse=200)
    assert page.count('class="retry"') == 4  # two failed attempts each of two tasks
    assert "✓ executed (3 attempts)" in page and "✗ failed (3 attempts)" in page
    assert "attempt 2 failed: RuntimeError: flaky try 2" in page
    assert "3 attempts" in draw(from_run(view), "mermaid")


def test_records_written_before_edges_were_stored_say_so_once(tmp_path):
    view = stored_run(tmp_path)
    for node_id, rec in list(view.records.items())[:3]:
        view.records[node_id] = rec._replace(upstream=None, after=())
    picture = from_run(view)
    assert not picture.edges_known and picture.unknown_edges == 3
    note = "the edges of 3 of 10 tasks are not in the run's records"
    assert note in draw(picture, "mermaid") and note in draw(picture, "dot")
    page = report_html(view, picture, collapse=200)
    assert page.count("3 of 10 tasks are not in the run") == 1  # not again in the drawing
    old = RunView.from_stored("r", INFO, {"a"}, {}, {"a": record("m.a", "done", "2026-11-30T10:00:11.000+00:00")})
    assert old.records["a"].upstream is None and from_run(old).unknown_edges == 1
    assert "the edges of tasks are not" in draw(from_run(old), "mermaid")


def test_records_that_contradict_each_other_still_draw():
    raw = {
        "a": record("m.a", "done", "2026-11-30T10:00:11.000+00:00", upstream=["b", "gone"]),
        "b": record("m.b", "done", "2026-11-30T10:00:12.000+00:00", upstream=["a"]),  # a cycle
        "c": record("m.c", "done", "2026-11-30T10:00:10.000+00:00", upstream="not a list"),
    }
    picture = from_run(RunView.from_stored("r", INFO, set(raw), {}, raw))
    assert len(picture.nodes) == 3 and len(picture.edges) == 1  # the edge to "gone" and one of the cycle dropped
    assert picture.unknown_edges == 1  # c's upstream is unreadable


def test_the_failure_banner_gives_the_command_that_resumes_the_run():
    error = "task 'm.b' failed in run 'r': ValueError: no (fix it and rerun with run_id='r' to resume)"
    raw = {"n": record("m.b", "failed", "2026-11-30T10:00:11.000+00:00", error="ValueError: no", upstream=[])}
    command = "cascade run flow.py:pipeline --state 'sqlite:///my runs.db' --run-id r"
    cli_run = RunView.from_stored(
        "r", {**INFO, "status": "failed", "error": error, "resume_command": command}, set(), {}, raw
    )
    page = report_html(cli_run, from_run(cli_run), collapse=200)
    assert (
        "To resume: <code>cascade run flow.py:pipeline --state &#x27;sqlite:///my runs.db&#x27; --run-id r</code>"
        in page
    )
    assert "rerun with run_id" not in page and "ValueError: no" in page
    python_run = RunView.from_stored("r", {**INFO, "status": "failed", "error": error}, set(), {}, raw)
    page = report_html(python_run, from_run(python_run), collapse=200)
    assert "To resume: <code>cascade_core.run(TARGET, run_id=&#x27;r&#x27;, state_backend=...)" in page
    done = RunView.from_stored("r", {**INFO, "resume_command": command}, {"n"}, {}, raw)
    assert "To resume" not in report_html(done, from_run(done), collapse=200)
