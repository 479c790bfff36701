"""The picture of a graph, independent of its drawing: nodes, edges, and the collapse of large graphs.

Above ``collapse`` task calls, the calls of one task at one depth (the longest path from a
node without inputs) become one node that counts them (``fetch ×1000  ✓998 ✗2``), so a
fan-out of 100,000 calls draws as a handful of nodes. When that still leaves more than
``collapse`` nodes (a long chain of one task), the calls collapse by task name alone.

Before that, each map is folded into one box (``folds.py``): a run-time map is ``square.map ×?``
before it ran and ``square ×1000  ✓998 ✗2`` after, a build-time map over more than
``FOLD_CALLS`` calls ``square ×N``. A router is drawn as one (its selector is its input).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter
from typing import Any

from .._build.gc_pause import collection_paused
from .folds import Folds, call_statuses, find_folds
from .palette import STATUSES, STYLES, describe_counts, group_status
from .run_view import RunView, TaskRecord, short_name
from .summary import routed_away

DEFAULT_COLLAPSE = 200
SHORT_ID = 8  # characters of a node id shown in a label


class PictureNode:
    """One drawn node: one task call, or a group of calls of one task."""

    __slots__ = (
        "key", "task", "name", "count", "statuses", "status", "target", "cacheable", "node_id", "depth", "kind", "known"
    )  # fmt: skip

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
        self.kind: str | None = None  # "map" (a box of a map's calls) or "router"
        self.known = True  # a map's calls are known (False before a run-time map expanded)


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
            # A map box without calls (not expanded, or over an empty list) shows its status by colour alone.
            counts = describe_counts(node.statuses) if self.run is not None and node.count else ""
            head = f"{node.name} ×{node.count}" if node.known else f"{node.name}.map ×?"
            return [head, *([counts] if counts else [])]
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
        if not node.known:
            what = "expands into one call per element when the run reaches it"
            return f"{head}.map: {what}" + (f"; {describe_counts(node.statuses)}" if self.run is not None else "")
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
    kinds = {task.name: task.kind for task in set(map(attrgetter("task"), nodes))}
    with collection_paused():  # pure computation allocating 100,000s of live containers
        folds = find_folds(names, list(map(kinds.get, names)), upstream, [-1] * len(names))
        recorded: dict[str, dict[str, int]] = {}
        if run is not None and folds.calls:  # the graph before the run: its maps' calls are in the run's records
            for (parent, status), size in Counter(
                (record.parent, record.status) for record in run.records.values() if record.parent
            ).items():
                recorded.setdefault(parent, {})[status] = size
            for index in folds.calls:
                folds.known[index] = folds.known[index] or ids[index] in run.records
        return _assemble(names, ids, upstream, ordering, graph.targets, cacheable, run, collapse, folds, recorded)


def from_run(run: RunView, collapse: int | None = DEFAULT_COLLAPSE) -> Picture:
    """The picture of a run from its records alone: its nodes, and the edges its records name."""
    records = _in_graph_order(_with_routes(run.ordered()))
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
        if index not in has_downstream
        and record.task in target_tasks
        and record.upstream is not None
        and not record.parent  # a node the run added is read by the node that added it
    ]
    parents = [position.get(record.parent, -1) if record.parent else -1 for record in records]
    folds = find_folds(names, [record.kind for record in records], upstream, parents)
    for index in folds.calls:
        folds.known[index] = True  # the run's records hold its calls: none means an empty list
    picture = _assemble(names, ids, upstream, ordering, targets, {}, run, collapse, folds)
    picture.unknown_edges = sum(record.upstream is None for record in records)
    return picture


def _with_routes(records: list[TaskRecord]) -> list[TaskRecord]:
    """``records`` where a router (or a task that returned a graph) takes the nodes it expanded
    into that nothing else among them reads as inputs, so that the chosen route is drawn into it."""
    kinds = {record.node_id: record.kind for record in records}
    children: dict[str, list[TaskRecord]] = {}
    for record in records:
        if record.parent and record.parent in kinds and kinds[record.parent] != "map":
            children.setdefault(record.parent, []).append(record)
    if not children:
        return records
    out = []
    for record in records:
        added = children.get(record.node_id)
        if added and record.upstream is not None:
            read = {up for child in added for up in (*(child.upstream or ()), *child.after)}
            roots = [child for child in added if child.node_id not in read]
            chosen = tuple(child.node_id for child in roots if not routed_away(child))
            away = tuple(child.node_id for child in roots if routed_away(child))  # drawn dashed: not its value
            record = record._replace(upstream=(*record.upstream, *chosen), after=(*record.after, *away))
        out.append(record)
    return out


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
    folds: Folds | None = None,
    recorded: dict[str, dict[str, int]] | None = None,
) -> Picture:
    """Group the calls into drawn nodes and count the edges between them (written for 100,000s of calls).

    ``folds``: the maps whose calls are one box; ``recorded``: map node id -> its calls' statuses
    when the calls are not among the nodes (a graph built before the run, coloured by the run).
    """
    count = len(names)
    depth = [0] * count
    for index, ups in enumerate(upstream):  # a topological order: every upstream comes first
        if ups:
            depth[index] = depth[ups[0]] + 1 if len(ups) == 1 else max([depth[up] for up in ups]) + 1
    folded = folds is not None and bool(folds.calls or folds.routers)
    collapsed = collapse is not None and (folds.drawn() if folds is not None and folded else count) > collapse
    keys: Sequence[Any] = range(count)
    if collapsed:
        keys = list(zip(names, depth))
        if len(set(keys)) > (collapse or 0):
            keys = names
    if folds is not None and folded:
        keys = [key if rep < 0 else ("map", rep) for key, rep in zip(keys, folds.rep)]
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
    if folds is not None and folded:
        _fill_maps(out, members, folds, ids, statuses, recorded or {}, shown, depth)
    for node in out:
        node.status = group_status(node.statuses)
    for index in targets:
        out[members[index]].target = True
    pairs = Counter([(members[up], members[index]) for index, ups in enumerate(upstream) for up in ups])
    if folded:  # the edges between a map's calls and the map: inside its box
        for group in {members[index] for index in folds.calls} if folds is not None else ():
            pairs.pop((group, group), None)
    order_only = Counter([(members[up], members[index]) for index, ups in ordering.items() for up in ups])
    edges = []
    for (source, target), size in pairs.items():
        edge = Edge(source, target)
        edge.count = size
        edge.order_only = order_only.get((source, target), 0) == size
        edges.append(edge)
    return Picture(out, edges, run, count, collapsed)


def _fill_maps(
    out: list[PictureNode],
    members: list[int],
    folds: Folds,
    ids: list[str],
    statuses: list[str] | None,
    recorded: dict[str, dict[str, int]],
    shown: dict[str, str],
    depth: list[int],
) -> None:
    """Each map's box: the mapped task's name, its calls' count and outcomes."""
    counted = call_statuses(folds, statuses)
    for index, calls in folds.calls.items():
        node = out[members[index]]
        node.kind, node.node_id = "map", None
        node.task = folds.tasks[index]
        node.name = shown.get(node.task) or short_name(node.task)
        node.known = folds.known[index]
        node.count = len(calls)
        node.statuses = counted[index]
        if not calls and ids[index] in recorded:
            node.statuses = recorded[ids[index]]
            node.count = sum(node.statuses.values())
        node.depth = max(node.depth, depth[index])
    for index in folds.routers:
        if out[members[index]].count == 1:
            out[members[index]].kind = "router"


def _shown_names(names: set[str]) -> dict[str, str]:
    """Each task's short name (after the last dot), or its full name where two tasks share the short one."""
    short = {name: short_name(name) for name in names}
    seen: dict[str, int] = {}
    for value in short.values():
        seen[value] = seen.get(value, 0) + 1
    return {name: value if seen[value] == 1 else name for name, value in short.items()}
