"""``explain``: what a run of a target would do, node by node, without running anything.

It takes the steps a run takes before its first task (_run/engine, plan, cache_lookup): the
graph, the results the run's state holds, the cache keys known up front and which of them the
cache holds, then the plan backwards from the targets. Each node is predicted ``resume`` (its
result is in the run's state), ``cache`` (a hit), ``run``, ``not needed`` (only hits or stored
results depend on it), or ``unknown`` (a cached node whose key needs the value of an upstream
that runs first; values that are stored or cached are loaded to compute such keys, as the run
does when the node is ready). Each ``run`` gets its cause (_run/why), from what earlier runs in the same
state store recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._build.cache_policy import by_values
from .._build.graph import build_graph
from .._errors import CascadeError
from .._plugins.resolve import check_run_id, resolve_cache, resolve_state
from .._store.codec import keys_from_env, state_key
from .cache_lookup import CacheLookup
from .context import DONE, MISSING, RunContext
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
            history = History.of_runs(state_spec.factory) if state_spec.factory is not None else History()
            return _predict(ctx, stored, history, given)
        finally:
            if state_spec.instance is None:
                state.close()
    finally:
        cache_spec.close()
        state_spec.close()


def _predict(ctx: RunContext, stored: set[str], history: History, run_id: str | None) -> Explanation:
    nodes, keys = ctx.nodes, ctx.keys
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
        elif must_run[index] and task.cache_policy is not None and keys[index] is None:
            # Looked up when it is ready, as the scheduler does: its key from its upstreams' keys
            # or the values of those that are stored or cached.
            item.key = keys[index] = _late_key(ctx, lookup, node, predictions, found, wanted)
            payload = ctx.cache.get_many([item.key]).get(item.key) if item.key is not None else None
            if payload is not None:
                found[item.key], wanted[item.key] = payload, [index]  # type: ignore[index]
                item.prediction = "cache"
            else:
                _explain_run(ctx, item, node, predictions, history, run_id)
        elif must_run[index]:
            _explain_run(ctx, item, node, predictions, history, run_id)
        predictions.append(item.prediction)
        out.append(item)
    return Explanation(run_id, out, [nodes[i].id for i in ctx.graph.targets], ctx.graph)


def _explain_run(
    ctx: RunContext, item: NodeExplanation, node: Any, predictions: list[str], history: History, run_id: str | None
) -> None:
    cause = _cause(ctx, node, predictions, history, run_id)
    item.prediction = "unknown" if cause.kind == "key after upstream" else "run"
    item.cause, item.reason, item.changed = cause.kind, cause.text, cause.changed


def _late_key(
    ctx: RunContext, lookup: CacheLookup, node: Any, predictions: list[str], found: dict, wanted: dict
) -> str | None:
    """The cache key of a node whose key needs its upstreams' values, when every such value is
    stored or cached (loaded and verified here); None when one comes from a task that runs."""
    by_value = by_values(node.task)
    tokens: dict[int, str | None] = {}
    for dep in node.data_deps:
        known = ctx.keys[dep]
        if known is not None and not by_value:
            tokens[dep] = known
            continue
        if predictions[dep] not in ("resume", "cache") or not _load(ctx, lookup, dep, predictions[dep], found, wanted):
            return None
        tokens[dep] = lookup.token(dep, by_value)
        if tokens[dep] is None:
            return None
    return lookup.cache_key(node.index, tokens)


def _load(ctx: RunContext, lookup: CacheLookup, index: int, prediction: str, found: dict, wanted: dict) -> bool:
    """Load the value of a stored or cached node into the run's results; False if it does not load."""
    if ctx.results[index] is not MISSING:
        return True
    node = ctx.nodes[index]
    try:
        if prediction == "resume":
            payload = ctx.state.get_results([node.id]).get(node.id)
            if payload is None:
                return False
            ctx.results[index] = ctx.codec.loads(state_key(ctx.run_id, node.id), payload)
            return True
        key = ctx.keys[index]
        opened = lookup.verified({key: found[key]}, {key: [index]}) if key is not None and key in found else {}
    except CascadeError:  # refused, or a blob this explanation cannot read: its key stays unknown
        return False
    if index not in opened:
        return False
    ctx.results[index] = opened[index][2]
    return True


def _cause(ctx: RunContext, node: Any, predictions: list[str], history: History, run_id: str | None) -> Cause:
    """Why a node the plan runs would run (its upstreams' predictions are made)."""
    task, nodes = node.task, ctx.nodes
    if task.cache_policy is None:
        where = f"run {run_id} holds no result for it" if run_id is not None else "a new run holds no results"
        return Cause("not cached", f"not cached (cache=False) and {where}")
    key = ctx.keys[node.index]
    if key is None:  # its key needs the value of an upstream that runs first
        waits = [nodes[up].task.name for up in node.data_deps if predictions[up] in ("run", "unknown")]
        shown = ", ".join(dict.fromkeys(waits)) or "an upstream"
        kind = "values" if by_values(task) else "value"
        early = " (INPUT_VALUES: early cutoff)" if by_values(task) else ""
        return Cause("key after upstream", f"its cache key needs the {kind} of {shown}{early}, computed first", waits)
    reran = [nodes[up].task.name for up in node.data_deps if predictions[up] == "run"]
    return why_missing(
        task.name, key, (task.code_version, task.code.units), argument_tokens(node, ctx.graph), reran, history
    )


__all__ = ["Explanation", "NodeExplanation", "explain"]
