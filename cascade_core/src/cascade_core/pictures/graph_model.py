"""The picture of a graph, independent of its drawing: nodes, edges, and the collapse of large graphs.

Above ``collapse`` task calls, the calls of one task at one depth (the longest path from a
node without inputs) become one node that counts them (``fetch ×1000  ✓998 ✗2``), so a
fan-out of 100,000 calls draws as a handful of nodes. When that still leaves more than
``collapse`` nodes (a long chain of one task), the calls collapse by task name alone.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter
from typing import Any

from .._build.gc_pause import collection_paused
from .palette import STATUSES, STYLES, describe_counts, group_status
from .run_view import RunView, TaskRecord

DEFAULT_COLLAPSE = 200
SHORT_ID = 8  # characters of a node id shown in a label


class PictureNode:
    """One drawn node: one task call, or a group of calls of one task."""

    __slots__ = ("key", "task", "name", "count", "statuses", "status", "target", "cacheable", "node_id", "depth")

    def __init__(self, key: str, task: str, name: str, depth: int, cacheable: bool) -> None:
        self.key = key  # n0, n1, ...: safe in every output format
        self.task = task  # the full task name
        self.name = name  # the name shown: the part after the last dot, unless two tasks share it
        self.count = 0
        self.statuses: dict[str, int] = {}
        self.status = "planned"
        self.target = False
        self.cacheable = cacheable
        self.node_id: str | None = None  # the node id, for a node that is one call
        self.depth = depth


class Edge:
    __slots__ = ("source", "target", "count", "order_only")

    def __init__(self, source: int, target: int) -> None:
        self.source = source
        self.target = target
        self.count = 0  # how many call-to-call edges it stands for
        self.order_only = True  # every one of them is an .after() ordering, not data


class Picture:
    """Nodes and edges to draw, with the run that colours them (None: the graph alone)."""

    def __init__(self, nodes: list[PictureNode], edges: list[Edge], run: RunView | None, calls: int, collapsed: bool):
        self.nodes = nodes
        self.edges = edges
        self.run = run
        self.calls = calls  # task calls in the graph
        self.collapsed = collapsed
        self.unknown_edges = 0  # drawn from a run alone: tasks whose records do not name their upstream
        self.legends: dict[str, str] = {}  # status -> legend text instead of its style's (a prediction's words)

    @property
    def edges_known(self) -> bool:
        return self.unknown_edges == 0

    def edges_note(self) -> str:
        """Why some edges are missing, or "" when every drawn task's edges are known."""
        if self.edges_known:
            return ""
        some = "" if self.unknown_edges == self.calls else f"{self.unknown_edges} of {self.calls} "
        return (
            f"the edges of {some}tasks are not in the run's records (written by an older cascade-core, "
            "or no record kept)"
        )

    def statuses(self) -> list[str]:
        """The statuses present, for the legend."""
        present: set[str] = set()
        for node in self.nodes:
            present.update(node.statuses)
        return [status for status in STATUSES if status in present]

    def label_lines(self, node: PictureNode) -> list[str]:
        """The text of a node, one line per item (renderers join and escape them)."""
        if node.node_id is None:
            counts = describe_counts(node.statuses) if self.run is not None else ""
            return [f"{node.name} ×{node.count}", *([counts] if counts else [])]
        symbol = STYLES[node.status].symbol
        lines = [f"{symbol + ' ' if symbol else ''}{node.name} · {node.node_id[:SHORT_ID]}"]
        record = self.run.records.get(node.node_id) if self.run is not None else None
        if record is not None and node.status not in ("skipped", "not_reached"):
            timed = record.duration is not None and node.status != "cached"  # a cache hit took no time here
            size = size_text(record.size)
            facts = [f"{record.duration:.3f}s" if timed else "", f"{size} by reference" if record.blob else size]
            facts.append(f"{record.attempts} attempts" if record.attempts > 1 else "")
            if any(facts):
                lines.append(" · ".join(fact for fact in facts if fact))
        return lines

    def tooltip(self, node: PictureNode) -> str:
        """What hovering a node shows: the task name, the id, and the error or skip reason."""
        head = node.task if node.node_id is None else f"{node.task} [{node.node_id}]"
        if self.run is None:
            return head if node.node_id is not None else f"{head}: {node.count} calls"
        if node.node_id is not None:
            record = self.run.records.get(node.node_id)
            text = record.text if record is not None else None
            return f"{head}: {node.status.replace('_', ' ')}" + (f": {text}" if text else "")
        return f"{head}: {node.count} calls, {describe_counts(node.statuses)}"


def size_text(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def from_graph(graph: Any, run: RunView | None = None, collapse: int | None = DEFAULT_COLLAPSE) -> Picture:
    """The picture of a built graph (``cascade_core._build.graph.Graph``), coloured by ``run`` when given."""
    nodes = graph.nodes
    names = list(map(attrgetter("task.name"), nodes))  # map and attrgetter: C speed for 100,000s of nodes
    cacheable = {task.name: task.cache_policy is not None for task in set(map(attrgetter("task"), nodes))}
    # Upstreams that are .after() orderings only (rare): drawn dashed.
    ordering = {
        node.index: tuple(up for up in node.upstream if up not in node.data_deps)
        for node in compress(nodes, map(attrgetter("lazy.ordering"), nodes))
    }
    ids = list(map(attrgetter("id"), nodes))
    upstream = list(map(attrgetter("upstream"), nodes))
    with collection_paused():  # pure computation allocating 100,000s of live containers
        return _assemble(names, ids, upstream, ordering, graph.targets, cacheable, run, collapse)


def from_run(run: RunView, collapse: int | None = DEFAULT_COLLAPSE) -> Picture:
    """The picture of a run from its records alone: its nodes, and the edges its records name."""
    records = _in_graph_order(run.ordered())
    position = {record.node_id: index for index, record in enumerate(records)}
    upstream: list[tuple[int, ...]] = []
    ordering: dict[int, tuple[int, ...]] = {}
    for index, record in enumerate(records):
        # Edges to nodes the run does not know of (never reached) are left out.
        ups = [position[up] for up in record.upstream or () if position.get(up, index) < index]
        after = [position[up] for up in record.after if position.get(up, index) < index]
        upstream.append((*ups, *after))
        if after:
            ordering[index] = tuple(after)
    names = [record.task for record in records]
    ids = [record.node_id for record in records]
    has_downstream = {up for ups in upstream for up in ups}
    target_tasks = set(str(run.info.get("target") or "").split(","))
    targets = [
        index
        for index, record in enumerate(records)
        if index not in has_downstream and record.task in target_tasks and record.upstream is not None
    ]
    picture = _assemble(names, ids, upstream, ordering, targets, {}, run, collapse)
    picture.unknown_edges = sum(record.upstream is None for record in records)
    return picture


def _in_graph_order(records: list[TaskRecord]) -> list[TaskRecord]:
    """``records`` (in the order they finished) reordered so that every upstream comes first."""
    position = {record.node_id: index for index, record in enumerate(records)}
    waiting = [0] * len(records)
    downstream: list[list[int]] = [[] for _ in records]
    for index, record in enumerate(records):
        for up in {*(record.upstream or ()), *record.after}:
            source = position.get(up)
            if source is not None and source != index:
                waiting[index] += 1
                downstream[source].append(index)
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        out.append(index)
        for down in downstream[index]:
            waiting[down] -= 1
            if waiting[down] == 0:
                heapq.heappush(ready, down)
    if len(out) < len(records):  # a cycle (records of two different graphs): the rest as they finished
        placed = set(out)
        out.extend(index for index in range(len(records)) if index not in placed)
    return [records[index] for index in out]


def _assemble(
    names: list[str],
    ids: list[str],
    upstream: Sequence[tuple[int, ...]],
    ordering: dict[int, tuple[int, ...]],
    targets: Sequence[int],
    cacheable: dict[str, bool],
    run: RunView | None,
    collapse: int | None,
) -> Picture:
    """Group the calls into drawn nodes and count the edges between them (written for 100,000s of calls)."""
    count = len(names)
    depth = [0] * count
    for index, ups in enumerate(upstream):  # a topological order: every upstream comes first
        if ups:
            depth[index] = depth[ups[0]] + 1 if len(ups) == 1 else max([depth[up] for up in ups]) + 1
    collapsed = collapse is not None and count > collapse
    keys: Sequence[Any] = range(count)
    if collapsed:
        keys = list(zip(names, depth))
        if len(set(keys)) > (collapse or 0):
            keys = names
    group_ids: dict[Any, int] = {}
    members = [group_ids.setdefault(key, len(group_ids)) for key in keys]
    first = {group: index for index, group in reversed(list(enumerate(members)))}
    if run is None:
        statuses: list[str] | None = None
    else:
        known = {node_id: record.status for node_id, record in run.records.items()}.get
        statuses = [known(node_id, "not_reached") for node_id in ids]
    shown = _shown_names(set(names))
    out: list[PictureNode] = []
    for group in range(len(group_ids)):
        index = first[group]
        name = names[index]
        node = PictureNode(f"n{group}", name, shown[name], depth[index], cacheable.get(name, False))
        out.append(node)
    for group, size in Counter(members).items():
        out[group].count = size
        if size == 1:
            out[group].node_id = ids[first[group]]
    if statuses is None:
        for node in out:
            node.statuses = {"planned": node.count}
    else:
        for (group, status), size in Counter(zip(members, statuses)).items():
            out[group].statuses[status] = size
    for node in out:
        node.status = group_status(node.statuses)
    for index in targets:
        out[members[index]].target = True
    pairs = Counter([(members[up], members[index]) for index, ups in enumerate(upstream) for up in ups])
    order_only = Counter([(members[up], members[index]) for index, ups in ordering.items() for up in ups])
    edges = []
    for (source, target), size in pairs.items():
        edge = Edge(source, target)
        edge.count = size
        edge.order_only = order_only.get((source, target), 0) == size
        edges.append(edge)
    return Picture(out, edges, run, count, collapsed)


def _shown_names(names: set[str]) -> dict[str, str]:
    """Each task's short name (after the last dot), or its full name where two tasks share the short one."""
    short = {name: name.rpartition(".")[2] or name for name in names}
    seen: dict[str, int] = {}
    for value in short.values():
        seen[value] = seen.get(value, 0) + 1
    return {name: value if seen[value] == 1 else name for name, value in short.items()}
