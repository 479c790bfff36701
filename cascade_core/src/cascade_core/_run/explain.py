"""``explain``: what a run of a target would do, node by node, without running anything.

It takes the steps a run takes before its first task (_run/engine, plan, cache_lookup): the
graph, the results the run's state holds, the cache keys known up front and which of them the
cache holds, then the plan backwards from the targets. Each node is predicted ``resume`` (its
result is in the run's state), ``cache`` (a hit), ``run``, ``not needed`` (only hits or stored
results depend on it), or ``unknown`` (a cached node whose key needs the value of an upstream
that runs first). Each ``run`` gets its cause (_run/why), from what earlier runs in the same
state store recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._build.cache_policy import by_values
from .._build.graph import build_graph
from .._plugins.resolve import check_run_id, resolve_cache, resolve_state
from .._store.codec import keys_from_env
from .cache_lookup import CacheLookup
from .context import DONE, RunContext
from .plan import plan
from .records import RunRecords
from .why import Cause, History, argument_tokens, why_missing

PREDICTIONS = ("resume", "cache", "run", "not needed", "unknown")


@dataclass
class NodeExplanation:
    """What a run would do with one node, and why when it would run."""

    node_id: str
    task: str
    prediction: str  # one of PREDICTIONS
    cause: str | None = None  # for "run" and "unknown": no entry, expired, code changed, ...
    reason: str | None = None  # one line
    changed: list[str] = field(default_factory=list)  # the code units or arguments that changed
    key: str | None = None  # its cache key, when known
    upstream: list[str] = field(default_factory=list)  # node ids


@dataclass
class Explanation:
    """The prediction for every node of a target's graph, in a topological order."""

    run_id: str | None
    nodes: list[NodeExplanation]
    targets: list[str]
    graph: Any = field(default=None, repr=False, compare=False)  # the graph explained (for pictures)

    def counts(self) -> dict[str, int]:
        """How many nodes get each prediction."""
        counts = dict.fromkeys(PREDICTIONS, 0)
        for node in self.nodes:
            counts[node.prediction] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: ``run_id``, ``counts`` and one object per node (docs/cli.md)."""
        return {
            "run_id": self.run_id,
            "counts": self.counts(),
            "targets": self.targets,
            "nodes": [
                {
                    "node_id": node.node_id,
                    "task": node.task,
                    "prediction": node.prediction,
                    "cause": node.cause,
                    "reason": node.reason,
                    "changed": node.changed,
                    "key": node.key,
                    "upstream": node.upstream,
                }
                for node in self.nodes
            ],
        }


def explain(
    target: Any,
    params: Mapping[str, Any] | None = None,
    *,
    state_backend: Any = None,
    cache_backend: Any = None,
    run_id: str | None = None,
) -> Explanation:
    """What ``run(target, ...)`` with these backends and run id would do, without running anything.

    >>> cs.explain(total(numbers()), cache_backend="sqlite:///cascade.db").counts()  # doctest: +SKIP
    {'resume': 0, 'cache': 11, 'run': 1, 'not needed': 0, 'unknown': 0}
    """
    graph = build_graph(target, params)
    state_spec = resolve_state(state_backend)
    cache_spec = resolve_cache(cache_backend)
    try:
        given = run_id if run_id is not None else getattr(state_spec.instance, "run_id", None)
        if given is not None:
            given = check_run_id(given)
        state = state_spec.open(given or "explain")
        try:
            stored = state.result_ids() if given is not None else set()
            ctx = RunContext(graph, given or "explain", state, cache_spec.backend, keys_from_env())
            history = History.of_runs(state_spec.factory, skip=None) if state_spec.factory is not None else History()
            return _predict(ctx, stored, history, given)
        finally:
            if state_spec.instance is None:
                state.close()
    finally:
        cache_spec.close()
        state_spec.close()


def _predict(ctx: RunContext, stored: set[str], history: History, run_id: str | None) -> Explanation:
    nodes, status, keys = ctx.nodes, ctx.status, ctx.keys
    resumed = {node.index for node in nodes if node.id in stored}
    ctx.table.mark(resumed, DONE)
    lookup = CacheLookup(ctx, RunRecords(ctx))
    found, wanted = lookup.prefetch()
    hits = {index for key in found for index in wanted[key]}
    must_run, _ = plan(ctx)
    predictions: list[str] = []
    out: list[NodeExplanation] = []
    for node in nodes:
        index = node.index
        task = node.task
        upstream = [nodes[up].id for up in node.upstream]
        item = NodeExplanation(node.id, task.name, "not needed", key=keys[index], upstream=upstream)
        if index in resumed:
            item.prediction = "resume"
        elif index in hits:
            item.prediction = "cache"
        elif must_run[index]:
            cause = _cause(ctx, node, predictions, history, run_id)
            item.prediction = "unknown" if cause.kind == "key after upstream" else "run"
            item.cause, item.reason, item.changed = cause.kind, cause.text, cause.changed
        elif status[index] == DONE:  # pragma: no cover (every done node is resumed or a hit)
            item.prediction = "cache"
        predictions.append(item.prediction)
        out.append(item)
    return Explanation(run_id, out, [nodes[i].id for i in ctx.graph.targets], ctx.graph)


def _cause(ctx: RunContext, node: Any, predictions: list[str], history: History, run_id: str | None) -> Cause:
    """Why a node the plan runs would run (its upstreams' predictions are made)."""
    task, nodes = node.task, ctx.nodes
    if task.cache_policy is None:
        where = f"run {run_id} holds no result for it" if run_id is not None else "a new run holds no results"
        return Cause("not cached", f"not cached (cache=False) and {where}")
    key = ctx.keys[node.index]
    if key is None and by_values(task):
        names = list(dict.fromkeys(nodes[up].task.name for up in node.data_deps))
        return Cause(
            "key after upstream",
            f"its cache key needs the values of {', '.join(names)} (INPUT_VALUES: early cutoff), "
            "known as the run reads them",
            names,
        )
    if key is None:
        waits = [nodes[up].task.name for up in node.data_deps if predictions[up] in ("run", "unknown")]
        shown = ", ".join(dict.fromkeys(waits)) or "an upstream"
        return Cause("key after upstream", f"its cache key needs the value of {shown}, computed first", waits)
    reran = [nodes[up].task.name for up in node.data_deps if predictions[up] == "run"]
    return why_missing(
        task.name, key, (task.code_version, task.code.units), argument_tokens(node, ctx.graph), reran, history
    )


__all__ = ["Explanation", "NodeExplanation", "explain"]
