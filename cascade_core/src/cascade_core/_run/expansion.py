"""The dynamic side of one run: ``run_if`` conditions, map and router expansion, graphs returned
by tasks, and the joins that give their nodes a value.

A node expands when it is ready: a map node into one call per element, a router into its
chosen route, a task that returned lazy results into that graph. The new nodes are added to
the graph and the node table (``Graph.add``, ``NodeTable.grow``), the expanding node waits
for them, and when they are done its value is theirs (a map's: their list) and it completes
like any node: stored, cached, its downstream released. Expansion is in the driver: every
driver sharing a run expands a map or router itself (the same nodes, by id), so the calls are
split between them. A graph returned by a task is stored beside its node (``<id>.graph``), so
a resume expands it again instead of running the task (docs/concepts.md, "Dynamic workflows").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._build.dynamic import elements, graph_roots, zip_calls
from .._build.lazy import condition_of
from .._build.task import LazyResult, Param
from .._errors import CascadeError, DefinitionError, SerializationError
from .._plugins.call import Outcome
from .context import DONE, MISSING, SKIPPED, RunContext
from .plan import load_stored
from .records import RunRecords

GRAPH_SUFFIX = ".graph"  # + a node id: the stored graph that node's task returned


class Expansions:
    """Conditions, expansions and joins of one run."""

    def __init__(
        self,
        ctx: RunContext,
        records: RunRecords,
        *,
        gather: Any,
        hold: Any,
        complete: Callable[[list[Outcome]], None],
        fail: Callable[[int, BaseException], None],
    ) -> None:
        self.ctx = ctx
        self.records = records
        self.gather = gather  # the executor's gather(handles) -> values (Dask), or None
        self.hold = hold
        self.complete = complete
        self.fail = fail
        self.stored: set[str] = set()  # node ids stored before the run started
        self.stored_graphs: set[str] = set()  # ids of the nodes whose returned graph is stored
        self.joins: dict[int, Any] = {}  # node index -> the shape its value is made from, once expanded

    def start(self, stored: set[str]) -> None:
        self.stored = stored
        self.stored_graphs = {i[: -len(GRAPH_SUFFIX)] for i in stored if i.endswith(GRAPH_SUFFIX)}

    @property
    def active(self) -> bool:
        return self.ctx.graph.dynamic or bool(self.joins) or bool(self.stored_graphs)

    # -- conditions ------------------------------------------------------------------

    def check_conditions(self, candidates: list[int]) -> list[int]:
        """Skip the nodes whose ``run_if`` condition is false (and what needs them); return the others."""
        ctx = self.ctx
        nodes = ctx.nodes
        kept = []
        for index in candidates:
            condition = condition_of(nodes[index].lazy)
            if condition is None or index in self.joins:
                kept.append(index)
                continue
            name = nodes[index].task.name
            try:
                truth = bool(self._value(condition))
            except Exception as exc:
                error = DefinitionError(
                    f"the run_if condition of task {name!r} cannot be read as true or false: {type(exc).__name__}: "
                    f"{exc}; make the condition return a bool"
                )
                self.fail(index, error)
                continue
            if truth:
                kept.append(index)
                continue
            what = condition.name if isinstance(condition, Param) else condition.task.name
            ctx.table.skip(index, f"run_if condition false: {what}", tell_state=True)
            ctx.table.skip_downstream(index, f"upstream skipped: {name}", ctx.graph.downstream)
        return kept

    def _value(self, source: Any) -> Any:
        """The run-time value of a lazy result or a Param (a real value, not an executor's handle)."""
        if isinstance(source, Param):
            return self.ctx.graph.params[source.name]
        value = self.ctx.results[self.ctx.graph.index_of[id(source)]]
        return value if self.gather is None else self.gather([value])[0]

    # -- expansion -------------------------------------------------------------------

    def take(self, candidates: list[int]) -> tuple[list[int], list[int]]:
        """Expand or join the dynamic nodes among ``candidates``; return (the others, nodes ready now)."""
        nodes = self.ctx.nodes
        others: list[int] = []
        ready: list[int] = []
        for index in candidates:
            node = nodes[index]
            if index in self.joins:
                self._join(index)
            elif node.task.kind == "map":
                ready += self._guarded(index, self._expand_map)
            elif node.task.kind == "router":
                ready += self._guarded(index, self._route)
            elif node.id in self.stored_graphs:
                ready += self._guarded(index, self._expand_stored)
            else:
                others.append(index)
        return others, ready

    def _guarded(self, index: int, expand: Callable[[int], list[int]]) -> list[int]:
        if self.records.verbose:  # it runs from now until its join: observers see it start
            self.records.started(index)
        try:
            return expand(index)
        except CascadeError as exc:  # bad input found at run time: this node fails, with one line
            self.fail(index, exc)
            return []

    def returned(self, index: int, shape: Any) -> list[int]:
        """A task returned a graph: store it beside its node, add it, and wait for it."""
        ctx = self.ctx
        node = ctx.nodes[index]
        graph_id = node.id + GRAPH_SUFFIX
        try:
            body = ctx.encoding.encode(node.task.name, shape)
        except SerializationError as exc:
            needs = (
                "returning a graph needs the pickle serializer"
                if ctx.codec.serializer != "pickle"
                else "the tasks it calls must be importable: defined at a module's top level"
            )
            name = node.task.name
            raise SerializationError(
                f"task {name!r} returned lazy results, which must be stored to resume the run: {exc} ({needs})"
            ) from exc
        code = ctx.codec.code
        ctx.state.put_results({graph_id: ctx.codec.seal(ctx.state_prefix + graph_id, code, body)})
        try:  # its task ran: its start was announced
            return self.expand(index, shape, node.id)
        except CascadeError as exc:
            self.fail(index, exc)
            return []

    def _expand_stored(self, index: int) -> list[int]:
        ctx = self.ctx
        graph_id = ctx.nodes[index].id + GRAPH_SUFFIX
        self.stored_graphs.discard(ctx.nodes[index].id)
        payload = ctx.state.get_results([graph_id]).get(graph_id)
        if payload is None:  # gone since the run started: the task runs again
            return [index]
        shape = ctx.codec.loads(ctx.state_prefix + graph_id, payload)
        return self.expand(index, shape, ctx.nodes[index].id)

    def _expand_map(self, index: int) -> list[int]:
        ctx = self.ctx
        node = ctx.nodes[index]
        mapped_task = node.task.mapped  # type: ignore[attr-defined]
        positional, keywords, flags = node.lazy.args
        names = [f"argument {i + 1}" for i in range(len(positional))] + [f"argument {k!r}" for k in keywords]
        columns = []
        for name, value, is_mapped in zip(names, [*positional, *keywords.values()], flags):
            if is_mapped and isinstance(value, (LazyResult, Param)):
                value = elements(self._value(value), f"{node.task.name}() {name}", DefinitionError)
            columns.append(value)
        rows = zip_calls(mapped_task.name, columns, list(flags), len(positional), list(keywords), DefinitionError)
        calls = [mapped_task(*args, **kwargs) for args, kwargs in rows]
        return self.expand(index, calls, node.id)

    def _route(self, index: int) -> list[int]:
        node = self.ctx.nodes[index]
        (selector,), routes = node.lazy.args, node.lazy.kwargs["routes"]
        value = self._value(selector)
        try:
            chosen = routes.routes[value]
        except (KeyError, TypeError):
            shown = ", ".join(map(repr, routes.routes))
            raise DefinitionError(
                f"router {node.task.name!r}: the selector's value {value!r} has no route (routes: {shown}); "
                "add a route for it or make the selector return one of them"
            ) from None
        # The other routes join the graph too, skipped: the records and pictures show what was routed away.
        others = [route for route in routes.routes.values() if type(route) is LazyResult and route is not chosen]
        return self.expand(index, chosen, None, routed_away=others)

    def expand(
        self, index: int, shape: Any, namespace: str | None, routed_away: Sequence[LazyResult] = ()
    ) -> list[int]:
        """Add the graph of ``shape`` (with ids in ``namespace``); ``index`` waits for it. Returns nodes ready now.

        ``routed_away``: lazy results added but not run (a router's other routes), skipped."""
        ctx = self.ctx
        graph, table = ctx.graph, ctx.table
        roots = graph_roots(shape) if type(shape) in (LazyResult, list, tuple, dict) else []
        added = graph.add([*roots, *routed_away], namespace)
        table.grow(len(added))
        if len(added):
            self.records.grew(index, len(added))
        roots_at = list(dict.fromkeys(graph.index_of[id(root)] for root in roots))
        links = graph.downstream
        for root in roots_at:
            links[root].append(index)
        self.joins[index] = shape
        ready = self.want(roots_at)
        if routed_away:
            name = ctx.nodes[index].task.name
            for new in added:
                if table.status[new] == 0 and not table.must_run[new]:
                    table.skip(new, f"routed away by {name}", tell_state=True)
        waiting = sum(1 for root in roots_at if table.status[root] != DONE)
        table.remaining[index] = waiting
        if not waiting:
            ready.append(index)
        return ready

    def want(self, indexes: list[int]) -> list[int]:
        """Plan the nodes ``indexes`` need and the run has not planned (new ones, or ones left out
        as not needed): resumed when stored, else to run; returns those ready now."""
        ctx = self.ctx
        nodes, table, results = ctx.nodes, ctx.table, ctx.results
        status, must_run = table.status, table.must_run
        planned: list[int] = []
        resumed: list[int] = []
        seen: set[int] = set()
        stack = list(indexes)
        while stack:
            index = stack.pop()
            if index in seen:
                continue
            seen.add(index)
            if status[index] == DONE:
                if results[index] is MISSING:
                    resumed.append(index)
                continue
            if must_run[index]:
                continue  # planned already: waiting, ready or running
            if nodes[index].id in self.stored:
                table.finish(index, "resumed")
                table.announce_skip(index, "resumed")
                resumed.append(index)
                continue
            if status[index] == SKIPPED:
                table.unskip(index)
            must_run[index] = 1
            planned.append(index)
            stack.extend(nodes[index].upstream)
        extra: list[int] = []
        if resumed:
            stored = [index for index in resumed if nodes[index].id in self.stored]
            need = bytearray(len(nodes))
            for index in stored:
                need[index] = 1
            lost = load_stored(ctx, stored, need, self.hold)  # pending again: their blobs are gone
            # Done but neither loaded nor stored (a cache hit nothing read): planned again, looked up again.
            unread = [index for index in resumed if nodes[index].id not in self.stored]
            table.mark(unread, 0)
            for index in lost:
                self.stored.discard(nodes[index].id)
            if lost or unread:
                extra = self.want(lost + unread)
        ready = []
        remaining = table.remaining
        for index in planned:
            count = sum(1 for up in nodes[index].upstream if status[up] != DONE)
            remaining[index] = count
            if not count:
                ready.append(index)
        return ready + extra

    def _join(self, index: int) -> None:
        """Every node an expanded node waited for is done: its value is theirs; complete it."""
        ctx = self.ctx
        shape = self.joins.pop(index)
        value = self._fill(shape)
        try:
            body = ctx.encoding.encode(ctx.nodes[index].task.name, value)
        except Exception as exc:  # SerializationError, or a blob store that failed
            self.complete([Outcome(index, False, exc, None, 0.0)])
            return
        self.complete([Outcome(index, True, value, body, 0.0)])

    def _fill(self, shape: Any) -> Any:
        """The shape with every lazy result replaced by its value (real values, not handles)."""
        kind = type(shape)
        if kind not in (LazyResult, list, tuple, dict):
            return shape
        ctx = self.ctx
        index_of, results = ctx.graph.index_of, ctx.results
        roots = graph_roots(shape)
        values = [results[index_of[id(root)]] for root in roots]
        if self.gather is not None and values:
            values = self.gather(values)
        by_id = {id(root): value for root, value in zip(roots, values)}
        if kind is LazyResult:
            return by_id[id(shape)]
        if kind is dict:
            return {key: by_id[id(item)] if type(item) is LazyResult else item for key, item in shape.items()}
        return kind(by_id[id(item)] if type(item) is LazyResult else item for item in shape)
