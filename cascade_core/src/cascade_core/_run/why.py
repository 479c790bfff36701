"""Why a node runs: what a run records of the cached nodes it executes, and how a key compares
with what earlier runs recorded.

A task record of a cached node that ran carries its cache ``key`` (the digest after the task's
name), its task's ``code`` version
and its ``inputs`` (a short digest per argument; an upstream by its node hash); the first such
record of a task in a run also carries the task's ``code_units`` (each function, class and
distribution its code version covers, with its digest). ``History`` gathers these from earlier
runs, newest first, and ``why_missing`` names the first cause that applies to a key not in the
cache: its entry expired (the same key was stored before), the code changed (which units),
an upstream reran, an input changed (which arguments), or there was no entry.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._build.encoding import UnhashableInput, encode_arg
from .._build.hashing import digest

TOKEN_CHARS = 12  # of an argument's digest: enough to tell values apart, short in every record
HISTORY_RUNS = 50  # the newest runs read for the causes of a miss
MAX_CALLS = 2000  # recorded calls of one task compared with a missing one (the newest)


def argument_names(task: Any, count: int) -> list[str]:
    """The names of a call's first ``count`` positional arguments (``args[2]`` past a ``*args``)."""
    positional = getattr(task, "_positional", None)
    if positional is not None and len(positional[0]) >= count:
        return list(positional[0][:count])
    try:
        parameters = list(inspect.signature(task.fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names: list[str] = []
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            names.append(parameter.name)
        elif parameter.kind is parameter.VAR_POSITIONAL:
            names.extend(f"{parameter.name}[{i}]" for i in range(count - len(names)))
            break
    names.extend(f"args[{i}]" for i in range(len(names), count))
    return names[:count]


def argument_tokens(node: Any, graph: Any) -> dict[str, str]:
    """A short digest of each argument of a node's call (an upstream by its node hash)."""
    lazy = node.lazy
    tokens: dict[str, str] = {}
    for name, value in (*zip(argument_names(node.task, len(lazy.args)), lazy.args), *lazy.kwargs.items()):
        try:
            tokens[name] = digest(encode_arg(value, graph, graph.params, None))[:TOKEN_CHARS]
        except (UnhashableInput, KeyError):
            tokens[name] = "?"
    return tokens


def record_fields(node: Any, key: str, graph: Any, with_units: bool) -> str:
    """The JSON fields (``, "key": ...``) a task record of a cached node that ran adds."""
    from json.encoder import encode_basestring_ascii as string  # C, as records.py writes records

    task = node.task
    inputs = ", ".join(f"{string(name)}: {string(token)}" for name, token in argument_tokens(node, graph).items())
    # The key's digest only: the record names the task (records are kept small, per node).
    text = (
        f', "key": {string(key[len(task.key_prefix) :])}, "code": {string(task.code_version)}, "inputs": {{{inputs}}}'
    )
    if with_units:
        text += f', "code_units": {json.dumps(task.code.units, sort_keys=True)}'
    return text


class History:
    """What earlier runs recorded of the cached nodes they executed (``add`` them newest first)."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}  # cache key -> the newest run that stored it
        self.code: dict[str, tuple[str, dict[str, str]]] = {}  # task -> its newest (code version, units)
        self._inputs: dict[str, list[dict[str, str]]] = {}  # task -> the inputs of its recorded calls

    def add(self, run_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """The parsed task records of one run, older than those added before."""
        units_of: dict[str, dict[str, str]] = {}
        versions: dict[str, str] = {}
        for record in records:
            key = recorded_key(record)
            task = record.get("task")
            if key is None or not isinstance(task, str):
                continue
            self.keys.setdefault(key, run_id)
            inputs = record.get("inputs")
            calls = self._inputs.setdefault(task, [])
            if isinstance(inputs, dict) and len(calls) < MAX_CALLS:
                calls.append(inputs)
            if isinstance(record.get("code"), str):
                versions[task] = record["code"]
            if isinstance(record.get("code_units"), dict):
                units_of[task] = record["code_units"]
        for task, version in versions.items():
            self.code.setdefault(task, (version, units_of.get(task, {})))

    def changed_arguments(self, task: str, inputs: Mapping[str, str]) -> list[str]:
        """The arguments that differ from the closest recorded call of ``task`` (fewest differences)."""
        best: list[str] | None = None
        for recorded in self._inputs.get(task, ()):
            if set(recorded) != set(inputs):
                continue
            changed = [name for name in inputs if recorded[name] != inputs[name]]
            if best is None or len(changed) < len(best):
                best = changed
                if len(best) <= 1:
                    break
        return best or []

    @classmethod
    def of_runs(cls, factory: Any, before: str | None = None, skip: str | None = None) -> History:
        """The history in a state store's runs (a RunCatalog), newest first; ``before``: only runs
        created before that time; ``skip``: a run id left out. Empty without a catalog."""
        history = cls()
        list_runs = getattr(factory, "list_runs", None)
        if not callable(list_runs):
            return history
        runs = sorted(list_runs(), key=lambda run: (run.get("created", ""), run.get("run_id", "")), reverse=True)
        runs = [r for r in runs if r.get("run_id") != skip and (before is None or r.get("created", "") < before)]
        for run in runs[:HISTORY_RUNS]:
            backend = factory(run["run_id"])
            try:
                getter = getattr(backend, "get_task_records", None)
                raw = getter() if callable(getter) else {}
            finally:
                backend.close()
            history.add(run["run_id"], parse_records(raw).values())
        return history


def recorded_key(record: Mapping[str, Any]) -> str | None:
    """The cache key a task record of a cached node that ran names (it keeps the digest only)."""
    key, task = record.get("key"), record.get("task")
    return f"{task}:{key}" if isinstance(key, str) and isinstance(task, str) else None


def parse_records(raw: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Task records (JSON strings by node id) as dicts; unreadable ones left out."""
    parsed: dict[str, dict[str, Any]] = {}
    for node_id, text in raw.items():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict):
            parsed[node_id] = record
    return parsed


class Cause:
    """Why a node runs: a ``kind`` for tools, a one-line ``text``, and what changed."""

    __slots__ = ("kind", "text", "changed")

    def __init__(self, kind: str, text: str, changed: Sequence[str] = ()) -> None:
        self.kind = kind  # no entry, expired, code changed, upstream reran, inputs changed, not cached, ...
        self.text = text
        self.changed = list(changed)

    def as_dict(self) -> dict[str, Any]:
        return {"cause": self.kind, "reason": self.text, "changed": self.changed}


def why_missing(
    task: str,
    key: str,
    code: tuple[str, dict[str, str]],
    inputs: Mapping[str, str],
    upstream_reran: Sequence[str],
    history: History,
) -> Cause:
    """Why the cache holds no entry under ``key`` for a call of ``task`` with this code (version,
    units) and these inputs, given what earlier runs recorded."""
    if key in history.keys:
        return Cause("expired", f"its entry (stored by run {history.keys[key]}) is gone: expired or removed")
    past = history.code.get(task)
    if past is not None and past[0] != code[0]:
        old, new = past[1], code[1]
        changed = sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))
        if not changed:  # version= changed, or units not recorded
            changed = [f"version {past[0]!r} -> {code[0]!r}"]
        return Cause("code changed", f"code changed: {', '.join(changed)}", changed)
    if upstream_reran:
        names = list(dict.fromkeys(upstream_reran))
        return Cause("upstream reran", f"upstream reran: {', '.join(names)}", names)
    changed_args = history.changed_arguments(task, inputs)
    if changed_args:
        return Cause("inputs changed", f"inputs changed: {', '.join(changed_args)}", changed_args)
    return Cause("no entry", "no cache entry for its key")
