"""The node table (cascade_core/_run/node_table.py): one owner of every node's state in a run,
whose slots grow in place while the run goes on."""

from __future__ import annotations

from types import SimpleNamespace

from cascade_core._run.node_table import DONE, FAILED, MISSING, PENDING, SKIPPED, NodeTable


def nodes(*upstreams: tuple[int, ...]) -> list[SimpleNamespace]:
    task = SimpleNamespace(name="t")
    return [SimpleNamespace(id=f"n{i}", task=task, upstream=ups) for i, ups in enumerate(upstreams)]


def downstream(graph: list[SimpleNamespace]) -> list[list[int]]:
    links: list[list[int]] = [[] for _ in graph]
    for index, node in enumerate(graph):
        for up in node.upstream:
            links[up].append(index)
    return links


def test_plan_and_release_follow_the_upstreams_still_pending():
    graph = nodes((), (), (0, 1), (2,))  # 0, 1 -> 2 -> 3
    table = NodeTable(graph, "r")
    assert table.plan(bytearray(b"\1\1\1\1")) == [0, 1]
    links = downstream(graph)
    table.finish(0, "executed")
    ready: list[int] = []
    table.release([0], links, ready)
    assert ready == []  # 2 still waits for 1
    table.finish(1, "cached")
    table.release([1], links, ready)
    assert ready == [2]
    assert table.counts["executed"] == table.counts["cached"] == 1 and table.counts["total"] == 4


def test_a_node_done_before_the_plan_is_not_waited_for():
    graph = nodes((), (0,))
    table = NodeTable(graph, "r")
    table.mark([0], DONE)  # resumed
    assert table.plan(bytearray(b"\0\1")) == [1]


def test_a_failure_skips_what_must_run_downstream_and_tells_the_state():
    graph = nodes((), (0,), (1,), (0,))  # 3 is not in the plan
    table = NodeTable(graph, "r")
    table.plan(bytearray(b"\1\1\1\0"))
    table.fail(0)
    table.skip_downstream(0, "upstream failed: t", downstream(graph))
    assert list(table.status) == [FAILED, SKIPPED, SKIPPED, PENDING]
    assert table.skipped == {"n1": "upstream failed: t", "n2": "upstream failed: t"}
    assert table.counts["failed"] == 1 and table.counts["skipped"] == 2


def test_skips_are_announced_to_observers_and_not_needed_ones_kept_from_the_state():
    seen = []
    hook = SimpleNamespace(cascade_task_skipped=lambda **event: seen.append(event))
    graph = nodes(())
    table = NodeTable(graph, "r", SimpleNamespace(hook=hook))
    table.skip(0, "not needed")
    assert seen == [{"run_id": "r", "task": "t", "node_id": "n0", "reason": "not needed"}]
    assert table.skipped == {} and table.status[0] == SKIPPED


def test_grow_extends_every_slot_in_place():
    graph = nodes((), (0,))
    table = NodeTable(graph, "r")
    status, results = table.status, table.results
    table.plan(bytearray(b"\1\1"))
    graph.extend(nodes((), (1,))[1:])  # a node added while the run goes on, downstream of node 1
    graph[2].id = "n2"
    table.grow(1)
    assert status is table.status and results is table.results and len(status) == len(results) == 3
    assert table.results[2] is MISSING and table.keys[2] is None and table.counts["total"] == 3
    table.must_run[2], table.remaining[2] = 1, 1
    table.finish(1, "executed")
    ready: list[int] = []
    table.release([1], downstream(graph), ready)
    assert ready == [2]
