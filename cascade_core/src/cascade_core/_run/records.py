"""What a run tells the world: counts by outcome, per-task records for ``cascade runs show``,
log lines, and events to observers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from .._masking import describe
from .._store.blob_refs import parse_reference
from .._store.process import driver_name
from .._store.serializers import is_reference
from .._times import stamp
from .why import record_fields

log = logging.getLogger("cascade")


class RunRecords:
    """Counts, task records, logging and events of one run.

    ``records``: node index -> (status, duration, size, error or reason, perf_counter when it
    finished), turned into JSON once, at the end; None when the state backend keeps no records.
    """

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.nodes = ctx.nodes
        self.run_id = ctx.run_id
        self.events = ctx.table.events  # the observers' hooks (make_events), shared with the node table
        self.debug = log.isEnabledFor(logging.DEBUG)
        self.counts = ctx.table.counts  # kept by the node table, reported from here
        self.failures: list[tuple[int, BaseException]] = []
        self.skipped = ctx.table.skipped  # node id -> reason, for state.mark_skipped
        self.clock = (time.time(), time.perf_counter())
        # The sixth field: the blob id of a result stored by reference, else None.
        self.records: dict[int, tuple[str, float, int | None, str | None, float, str | None]] | None = (
            {} if ctx.state_caps.task_records is not None else None
        )
        # Node index -> its failed attempts that were retried: (perf_counter at the end, duration, error).
        self.retried: dict[int, list[tuple[float, float | None, str]]] = {}
        # Node index -> the index of the node that expanded into it (a map, a router, a task that returned a graph).
        self.parents: dict[int, int] = {}

    @property
    def verbose(self) -> bool:
        """Whether anything listens to per-task events (the fast paths skip them otherwise)."""
        return self.events is not None or self.debug

    # -- the run -------------------------------------------------------------

    def run_started(self, stored: int, state_label: str, cache_label: str) -> None:
        log.info(
            "run %s started: %d tasks, state %s, cache %s%s",
            self.run_id,
            len(self.nodes),
            state_label,
            cache_label,
            f", resuming ({stored} results stored)" if stored else "",
        )
        if self.events:
            self.events.hook.cascade_run_started(
                run_id=self.run_id, tasks=len(self.nodes), state=state_label, cache=cache_label
            )

    def run_finished(self, status: str) -> None:
        if self.events:
            self.events.hook.cascade_run_finished(
                run_id=self.run_id,
                status=status,
                counts=dict(self.counts),
                duration=time.perf_counter() - self.clock[1],
            )
        log.info(
            "run %s %s: %s",
            self.run_id,
            status,
            ", ".join(
                f"{value} {name.replace('_', ' ')}" for name, value in self.counts.items() if value and name != "total"
            ),
        )

    # -- tasks -----------------------------------------------------------------

    def grew(self, index: int, added: int) -> None:
        """Node ``index`` expanded into ``added`` more nodes."""
        node = self.nodes[index]
        total = len(self.nodes)  # the added nodes are the graph's last ones (Graph.add appends)
        self.parents.update(dict.fromkeys(range(total - added, total), index))
        log.debug("task %s (node %s) expanded into %d nodes", node.task.name, node.id, added)
        if self.events:
            self.events.hook.cascade_graph_grew(
                run_id=self.run_id, task=node.task.name, node_id=node.id, added=added, tasks=len(self.nodes)
            )

    def started(self, index: int) -> None:
        node = self.nodes[index]
        if self.debug:
            log.debug("task %s [%s] started", node.task.name, node.id[:12])
        if self.events:
            self.events.hook.cascade_task_started(run_id=self.run_id, task=node.task.name, node_id=node.id)

    def finished(self, index: int, duration: float) -> None:
        """Events of a task that ran here and stored its result."""
        node = self.nodes[index]
        if self.debug:
            log.debug("task %s [%s] finished in %.6fs", node.task.name, node.id[:12], duration)
        if self.events:
            self.events.hook.cascade_task_finished(
                run_id=self.run_id, task=node.task.name, node_id=node.id, duration=duration, cached=False
            )

    def served_from_cache(self, indexes: Iterable[int]) -> None:
        for index in indexes:
            node = self.nodes[index]
            if self.debug:
                log.debug("task %s [%s] served from cache", node.task.name, node.id[:12])
            if self.events:
                self.events.hook.cascade_task_finished(
                    run_id=self.run_id, task=node.task.name, node_id=node.id, duration=0.0, cached=True
                )

    def record(self, index: int, status: str, duration: float, size: int | None, text: str | None = None) -> None:
        if self.records is not None:
            self.records[index] = (status, duration, size, text, time.perf_counter(), None)

    def cached(self, sizes: dict[int, int]) -> None:
        """Record cache hits: node index -> the size of its cached payload (one clock read for the batch)."""
        if self.records is not None and sizes:
            at = time.perf_counter()
            self.records.update({index: ("cached", 0.0, size, None, at, None) for index, size in sizes.items()})

    def stored(self, index: int, duration: float, body: bytes) -> None:
        """Record a task that ran and stored ``body``: its result, or a reference to a blob
        (then the record names the blob and gives the result's own size)."""
        if self.records is None:
            return
        reference = parse_reference(body) if is_reference(body) else None
        if reference is None:
            self.records[index] = ("done", duration, len(body), None, time.perf_counter(), None)
        else:
            self.records[index] = ("done", duration, reference[1], None, time.perf_counter(), reference[0])

    def retrying(
        self, index: int, attempt: int, error: BaseException, delay: float, duration: float | None = None
    ) -> None:
        """Log and announce that attempt ``attempt`` (0-based) failed and the task runs again."""
        node = self.nodes[index]
        task = node.task
        if self.records is not None:
            self.retried.setdefault(index, []).append((time.perf_counter(), duration, describe(error)))
        log.warning(
            "task %s failed (attempt %d of %d): %s; retrying in %.2fs",
            task.name,
            attempt + 1,
            task.retries + 1,
            describe(error),
            delay,
        )
        if self.events:
            self.events.hook.cascade_task_retrying(
                run_id=self.run_id, task=task.name, node_id=node.id, attempt=attempt + 1, error=error, delay=delay
            )

    def failed(self, index: int, error: BaseException, stops_run: bool, duration: float) -> None:
        """Record a failure (the node table counts it); unless it stops the run (interrupted), log it
        and tell observers."""
        self.failures.append((index, error))
        self.record(index, "failed", duration, None, describe(error))
        if stops_run:  # interrupted: the run stops, the task did not fail
            return
        node = self.nodes[index]
        log.error(
            "task %s failed in run %s: %s",
            node.task.name,
            self.run_id,
            describe(error),
            extra={"cascade_event": "task_failed"},
        )
        if self.events:
            self.events.hook.cascade_task_failed(run_id=self.run_id, task=node.task.name, node_id=node.id, error=error)

    # -- the stored form ---------------------------------------------------------

    def record_json(self) -> dict[str, str]:
        """The task records as JSON strings.

        Every string value is encoded by the json module's own encoder (its C
        ``encode_basestring_ascii``, what ``json.dumps`` uses for a str); only the object around
        the values is joined here, because ``json.dumps`` of a dict per record measured six times
        slower (67 ms against 11 ms for 10,000 records), most of a warm rerun's own cost. Each
        record names its ``upstream`` node ids (``after`` for .after() orderings), so that a run
        alone draws its graph, and a retried task its ``attempts`` and ``failed_attempts``. A
        cached node that ran adds its ``key``, ``code`` and ``inputs`` (and its task's first, the
        ``code_units``): what explain compares later runs with (_run/why).
        """
        string = _json_string()
        parents = self.parents  # a node added during the run names the node that expanded into it
        wall, perf = self.clock
        driver = f', "driver": {string(driver_name())}'  # who ran it: drivers may share a run
        nodes, retried = self.nodes, self.retried
        keys, graph, with_units = self.ctx.keys, self.ctx.graph, set()
        leaf_end = f', "upstream": []{driver}}}'
        heads: dict[tuple[int, str, float], str] = {}  # (id(task), status, duration) -> the record's start
        stamps: dict[int, str] = {}
        out: dict[str, str] = {}
        for index, (status, duration, size, text, at, blob) in (self.records or {}).items():
            millis = int((wall + at - perf) * 1000)
            finished = stamps.get(millis)
            if finished is None:
                finished = stamps[millis] = string(stamp(millis / 1000))
            node = nodes[index]
            task = node.task
            head = heads.get((id(task), status, duration))
            if head is None:  # a warm rerun's hits share one: cached, in no time
                head = heads[(id(task), status, duration)] = (
                    f'{{"task": {string(task.name)}, "status": {string(status)}, "duration": {duration:.6f}'
                )
            extra = f', "size": {size}' if size is not None else ""
            if text is not None:
                extra += f', "{"reason" if status == "skipped" else "error"}": {string(text)}'
            if parents and index in parents:  # `parent`, and `kind` (and a router's `routes`): docs/backends.md
                extra += f', "parent": "{nodes[parents[index]].id}"'
            if task.kind is not None:  # a map or a router: rare
                extra += f', "kind": {string(task.kind)}'
                if task.kind == "router":
                    extra += f', "routes": {len(node.lazy.kwargs["routes"].routes)}'
            if blob is not None:
                extra += f', "blob": {string(blob)}'
            if retried and index in retried:
                extra += _attempts(retried[index], wall, perf)
            if status == "done" and task.cache_policy is not None and keys[index] is not None:
                # What `cascade explain` and `runs show --why` compare later runs with (_run/why).
                extra += record_fields(node, keys[index], graph, task not in with_units)
                with_units.add(task)
            ups = node.upstream
            if not ups:
                end = leaf_end
            elif node.lazy.ordering:  # rare: the .after() orderings apart from the data inputs
                data = set(node.data_deps)
                end = f', "upstream": {_ids(nodes, [u for u in ups if u in data])}'
                end += f', "after": {_ids(nodes, [u for u in ups if u not in data])}{driver}}}'
            else:
                end = f', "upstream": {_ids(nodes, ups)}{driver}}}'
            out[node.id] = f'{head}{extra}, "finished": {finished}{end}'
        return out


def _ids(nodes: Any, indexes: Iterable[int]) -> str:
    """A JSON array of node ids (hex digests: nothing to escape)."""
    joined = '","'.join([nodes[index].id for index in indexes])
    return f'["{joined}"]' if joined else "[]"


def _json_string() -> Any:
    """The json module's encoder of one str as a JSON string (C, ASCII-only, every escape)."""
    from json.encoder import encode_basestring_ascii

    return encode_basestring_ascii


def _attempts(failures: list[tuple[float, float | None, str]], wall: float, perf: float) -> str:
    """The ``attempts`` and ``failed_attempts`` fields of a retried task's record."""
    string = _json_string()
    tries = [
        f'{{"finished": {string(stamp(wall + at - perf))}, '
        f'"duration": {"null" if duration is None else f"{duration:.6f}"}, "error": {string(error)}}}'
        for at, duration, error in failures
    ]
    return f', "attempts": {len(failures) + 1}, "failed_attempts": [{", ".join(tries)}]'
