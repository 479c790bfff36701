"""The state of every node of one run, owned in one place.

The plan, the cache lookup, the claims and the scheduler change a node's state only through
a :class:`NodeTable`: how it ended (``finish``, ``skip``, ``fail``, counted by outcome), what
must run and how many upstreams each still waits for (``plan``, ``release``). Its per-node
slots are lists and bytearrays indexed by node index that ``grow`` extends in place, so a
graph may gain nodes while its run goes on, and an alias such as ``ctx.status`` stays valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

MISSING: Any = object()  # a node's result before it is known

# A node's state during a run (a byte per node in NodeTable.status).
PENDING, DONE, FAILED, SKIPPED = 0, 1, 2, 3

# How each node ended, by count name. ``by_other_drivers``: stored by another driver sharing the run.
COUNT_NAMES = ("total", "executed", "cached", "resumed", "by_other_drivers", "failed", "skipped")


class NodeTable:
    """Per-node slots, counts and skips of one run.

    ``results``: each node's value (or the executor's handle of it); ``status``: PENDING, DONE,
    FAILED or SKIPPED; ``keys``: cache keys once known; ``looked_up``: 1 once the node's key was
    looked up; ``must_run`` and ``remaining`` (upstreams not done yet) once the run is planned.
    ``skipped``: node id -> reason, for the nodes the state is told were skipped.
    """

    __slots__ = (
        "nodes",
        "run_id",
        "events",
        "results",
        "status",
        "keys",
        "looked_up",
        "must_run",
        "remaining",
        "counts",
        "skipped",
    )

    def __init__(self, nodes: Sequence[Any], run_id: str, events: Any = None) -> None:
        self.nodes = nodes
        self.run_id = run_id
        self.events = events  # the observers' pluggy hooks (make_events), or None
        n = len(nodes)
        self.results: list[Any] = [MISSING] * n
        self.status = bytearray(n)
        self.keys: list[str | None] = [None] * n
        self.looked_up = bytearray(n)
        self.must_run = bytearray(n)
        self.remaining: list[int] = [0] * n
        self.counts = dict.fromkeys(COUNT_NAMES, 0)
        self.counts["total"] = n
        self.skipped: dict[str, str] = {}

    def grow(self, count: int) -> None:
        """Slots for ``count`` more nodes (appended to ``nodes`` by the graph), pending."""
        self.results.extend([MISSING] * count)
        self.status.extend(bytes(count))
        self.keys.extend([None] * count)
        self.looked_up.extend(bytes(count))
        self.must_run.extend(bytes(count))
        self.remaining.extend([0] * count)
        self.counts["total"] += count

    # -- how nodes end ---------------------------------------------------------------

    def mark(self, indexes: Iterable[int], state: int) -> None:
        """Set a state without counting it: planning's provisional marks and their undoing."""
        status = self.status
        for index in indexes:
            status[index] = state

    def finish(self, index: int, how: str) -> None:
        """The node is done: ``executed``, ``cached``, ``resumed`` or ``by_other_drivers``."""
        self.status[index] = DONE
        self.counts[how] += 1

    def finish_many(self, indexes: Sequence[int], how: str) -> None:
        status = self.status
        for index in indexes:
            status[index] = DONE
        self.counts[how] += len(indexes)

    def count(self, how: str, number: int) -> None:
        """Count nodes that ended ``how`` without their states being set one by one (a warm rerun's unused hits)."""
        self.counts[how] += number

    def fail(self, index: int) -> None:
        self.status[index] = FAILED
        self.counts["failed"] += 1

    def skip(self, index: int, reason: str, *, tell_state: bool = False) -> None:
        """The node will not run: counted, announced, and with ``tell_state`` listed for ``mark_skipped``."""
        self.status[index] = SKIPPED
        self.counts["skipped"] += 1
        if tell_state:
            self.skipped[self.nodes[index].id] = reason
        self.announce_skip(index, reason)

    def unskip(self, index: int) -> None:
        """A node skipped as not needed is needed after all (a graph grew that reads it): pending again."""
        self.status[index] = PENDING
        self.counts["skipped"] -= 1
        self.skipped.pop(self.nodes[index].id, None)

    def announce_skip(self, index: int, reason: str) -> None:
        """Tell observers a node did not run here (skipped, resumed, done by another driver)."""
        if self.events:
            node = self.nodes[index]
            hook = self.events.hook
            hook.cascade_task_skipped(run_id=self.run_id, task=node.task.name, node_id=node.id, reason=reason)

    # -- what runs when ----------------------------------------------------------------

    def plan(self, must_run: bytearray) -> list[int]:
        """Take the plan (a flag per node that must run); return the flagged nodes ready now."""
        self.must_run[:] = must_run
        nodes, status, remaining = self.nodes, self.status, self.remaining
        ready = []
        index = -1
        while (index := must_run.find(1, index + 1)) >= 0:
            count = sum(1 for up in nodes[index].upstream if status[up] != DONE)
            remaining[index] = count
            if count == 0:
                ready.append(index)
        return ready

    def release(self, indexes: Iterable[int], downstream: Sequence[Sequence[int]], ready: Any) -> None:
        """Append to ``ready`` (a list or deque) the downstream nodes ready now that ``indexes`` are done."""
        remaining, must_run, status, append = self.remaining, self.must_run, self.status, ready.append
        for index in indexes:
            for down in downstream[index]:
                if must_run[down]:
                    remaining[down] -= 1
                    if remaining[down] == 0 and status[down] == PENDING:
                        append(down)

    def skip_downstream(self, index: int, reason: str, downstream: Sequence[Sequence[int]]) -> None:
        """Skip every pending node that must run downstream of ``index`` (which failed)."""
        status, must_run = self.status, self.must_run
        stack = list(downstream[index])
        while stack:
            down = stack.pop()
            if status[down] != PENDING or not must_run[down]:
                continue
            self.skip(down, reason, tell_state=True)
            stack.extend(downstream[down])
