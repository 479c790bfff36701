"""The picture of a graph, independent of its drawing: nodes, edges, and the collapse of large graphs.

Above ``collapse`` task calls, the calls of one task at one depth (the longest path from a
node without inputs) become one node that counts them (``fetch ×1000  ✓998 ✗2``), so a
fan-out of 100,000 calls draws as a handful of nodes. When that still leaves more than
``collapse`` nodes (a long chain of one task), the calls collapse by task name alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter
from typing import Any

from .._gc import collection_paused
from .palette import STATUSES, STYLES, describe_counts, group_status
from .run_view import RunView

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
        self.edges_known = True  # False when drawn from a run's records alone

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
    """The picture of a built graph (``cascade_core._graph.Graph``), coloured by ``run`` when given."""
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
    """The picture of a run from its records alone: its nodes, without edges (they are not stored)."""
    records = run.ordered()
    names = [record.task for record in records]
    ids = [record.node_id for record in records]
    picture = _assemble(names, ids, [()] * len(records), {}, (), {}, run, collapse)
    picture.edges_known = False
    return picture


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
