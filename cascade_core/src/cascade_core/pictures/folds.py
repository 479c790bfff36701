"""Which calls a picture folds into the box of their map.

A map over a run-time list is one node before the run; during it, it expands into one call
per element (each record names the map as its ``parent``). A map over a plain list is built
as its calls and a ``cascade.collect`` node. Either way the picture draws one box per map,
``square ×1000`` with the calls' outcomes, whose edges are the map's own: from its upstream,
to its downstream. A build-time map is folded only above ``FOLD_CALLS`` calls, so that a
small one still shows each call; the calls that feed its calls one each (``g.map(f.map(xs))``)
are a box of their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

COLLECT = "cascade.collect"
FOLD_CALLS = 20  # a cascade.collect over more calls than this, all of one task, is drawn as one box


class Folds:
    """``rep[i]``: the index of the map node that call ``i`` is folded into (-1: none; a map node is
    its own); ``calls[m]``: the indexes of map ``m``'s calls; ``known[m]``: whether its calls are
    known (False for a run-time map drawn before it expanded)."""

    __slots__ = ("rep", "calls", "known", "tasks", "routers")

    def __init__(self, count: int) -> None:
        self.rep = [-1] * count
        self.calls: dict[int, list[int]] = {}
        self.known: dict[int, bool] = {}
        self.tasks: dict[int, str] = {}  # map node index -> the mapped task's name
        self.routers: list[int] = []  # the indexes of router nodes (drawn as routers)

    def drawn(self) -> int:
        """How many nodes are drawn once the maps are folded."""
        return self.rep.count(-1) + len(self.calls)


def find_folds(
    names: Sequence[str],
    kinds: Sequence[str | None],
    upstream: Sequence[tuple[int, ...]],
    parents: Sequence[int],
) -> Folds:
    """The folds of a graph's nodes: ``kinds`` from the tasks or records, ``parents`` the index of
    the node each one was expanded from (-1: none)."""
    folds = Folds(len(names))
    rep, calls = folds.rep, folds.calls
    for index, kind in enumerate(kinds):
        if kind == "router":
            folds.routers.append(index)
        if kind == "map":
            rep[index] = index
            calls[index] = []
            folds.known[index] = False
            folds.tasks[index] = names[index][: -len(".map")] if names[index].endswith(".map") else names[index]
    if calls and any(parent >= 0 for parent in parents):
        for index, parent in enumerate(parents):
            if parent < 0:
                continue
            if parent in calls:
                calls[parent].append(index)
            outer = _outermost_map(index, parents, calls)
            if outer >= 0:
                rep[index] = outer
        for index in [index for index in calls if rep[index] != index]:  # a map inside another map's call
            del calls[index]
    for index, name in enumerate(names):
        ups = upstream[index]
        if name != COLLECT or len(ups) <= FOLD_CALLS or rep[index] >= 0:
            continue
        members = list(dict.fromkeys(ups))
        task = names[members[0]]
        if any(names[up] != task or rep[up] >= 0 or kinds[up] is not None for up in members):
            continue
        rep[index] = index
        for up in members:
            rep[up] = index
        calls[index] = members
        folds.known[index] = True
        folds.tasks[index] = task
    _fold_columns(folds, names, kinds, upstream)
    return folds


def _fold_columns(
    folds: Folds, names: Sequence[str], kinds: Sequence[str | None], upstream: Sequence[tuple[int, ...]]
) -> None:
    """Fold the calls that feed a build-time map's calls one each (``g.map(f.map(xs))``,
    ``square.map([fetch(i) for i in ...])``) into a box of their own, column by column."""
    rep, calls = folds.rep, folds.calls
    built = [index for index in calls if names[index] == COLLECT and folds.known[index]]
    readers: Counter[int] | None = None
    while built:
        members = calls[built.pop()]
        column = [upstream[member][0] if len(upstream[member]) == 1 else -1 for member in members]
        if -1 in column or len(set(column)) != len(column):
            continue
        task = names[column[0]]
        if any(names[up] != task or rep[up] >= 0 or kinds[up] is not None for up in column):
            continue
        if readers is None:
            readers = Counter(up for ups in upstream for up in ups)
        if any(readers[up] != 1 for up in column):  # read elsewhere too: drawn on its own
            continue
        head = column[0]
        for up in column:
            rep[up] = head
        calls[head] = column
        folds.known[head] = True
        folds.tasks[head] = task
        built.append(head)


def _outermost_map(index: int, parents: Sequence[int], maps: dict[int, list[int]]) -> int:
    """The outermost map among ``index``'s ancestors (by ``parent``), or -1."""
    found = -1
    seen = 0
    parent = parents[index]
    while parent >= 0 and seen < len(parents):  # seen: records of two runs could make a loop
        if parent in maps:
            found = parent
        parent = parents[parent]
        seen += 1
    return found


def call_statuses(folds: Folds, statuses: Sequence[str] | None) -> dict[int, dict[str, int]]:
    """Each map's calls counted by status (``planned`` without a run)."""
    out: dict[int, dict[str, int]] = {}
    for index, members in folds.calls.items():
        if statuses is None:
            out[index] = {"planned": len(members) or 1}
        elif members:
            out[index] = dict(Counter(statuses[member] for member in members))
        else:  # not expanded (yet), or over an empty list: the map's own status
            out[index] = {statuses[index]: 1}
    return out
