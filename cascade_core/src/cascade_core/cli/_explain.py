"""``cascade explain TARGET`` and ``cascade runs show ID --why NODE``: what would run and why,
what ran and why (the prediction is _run/explain's, the causes _run/why's)."""

from __future__ import annotations

import argparse
from typing import Any

from .._errors import UsageError
from ._exit import EXIT_OK
from ._output import print_json, print_table

# A prediction drawn as the run status of that colour, with its own words in the legend.
_PICTURE_STATUS = {"resume": "resumed", "cache": "cached", "run": "executed", "not needed": "not_reached"}
_LEGENDS = {
    "resumed": "resumed (stored in the run)",
    "cached": "from the cache",
    "executed": "would run",
    "not_reached": "not needed",
    "planned": "unknown until an upstream runs",
}


def add_parser(commands: Any) -> None:
    from ._stores import CACHE_ENV, DEFAULT_STORE, STATE_ENV
    from ._target import add_param_option, target_command

    parser = target_command(
        commands,
        "explain",
        help="say what a run of a target would do, and why, without running it",
        description="For each task call of TARGET (path/to/file.py:NAME or package.module:NAME): whether a run "
        "would take it from the run's state (resume), from the cache, or run it, and for each that would run, "
        "why: no entry, expired, code changed (which function), inputs changed (which argument), upstream reran. "
        "Nothing runs and nothing is written.",
    )
    add_param_option(parser, "set a param, or a parameter of the target function (repeatable), as for 'cascade run'")
    parser.add_argument(
        "--state", default=None, metavar="URI", help=f"state backend URI (default: ${STATE_ENV} or {DEFAULT_STORE})"
    )
    parser.add_argument(
        "--cache", default=None, metavar="URI", help=f"cache backend URI (default: ${CACHE_ENV} or {DEFAULT_STORE})"
    )
    parser.add_argument(
        "--run-id", default=None, metavar="ID", help="the run id the run would use (default: a new one)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument(
        "--graph",
        choices=("mermaid",),
        default=None,
        metavar="FORMAT",
        help="the graph coloured by prediction: mermaid",
    )
    parser.set_defaults(handler=explain_command)


def explain_command(args: argparse.Namespace) -> int:
    from .._run.explain import explain
    from ._stores import default_cache, default_state, missing_file, parse_uri
    from ._target import load_target, parse_params

    if args.json and args.graph:
        raise UsageError("--json and --graph are two outputs: give one")
    state_uri = parse_uri(args.state or default_state())
    cache_uri = parse_uri(args.cache or default_cache())
    target, params = load_target(args.target, parse_params(args.param))
    # A sqlite file that does not exist holds nothing: explain against empty stores, creating no file.
    explanation = explain(
        target,
        params,
        state_backend=None if missing_file(state_uri) else state_uri,
        cache_backend=None if missing_file(cache_uri) else cache_uri,
        run_id=args.run_id,
    )
    if args.json:
        print_json(explanation.as_dict())
    elif args.graph:
        print(_mermaid(explanation), end="")
    else:
        _print(explanation)
    return EXIT_OK


def _print(explanation: Any) -> None:
    counts = explanation.counts()
    words = {"resume": "resumed", "cache": "from the cache", "run": "would run"}
    summary = ", ".join(f"{n} {words.get(name, name)}" for name, n in counts.items() if n)
    print(f"{len(explanation.nodes)} tasks: {summary or 'nothing'}")
    rows = [[node.task, node.node_id[:12], node.prediction, node.reason or ""] for node in explanation.nodes]
    print_table(["task", "node", "prediction", "why"], rows)


def _mermaid(explanation: Any) -> str:
    from ..pictures import draw, from_graph
    from ..pictures.run_view import RunView, TaskRecord

    records = {
        node.node_id: TaskRecord(
            node.node_id, node.task, _PICTURE_STATUS.get(node.prediction, "planned"), None, None, node.reason, None
        )
        for node in explanation.nodes
    }
    picture = from_graph(explanation.graph, RunView(explanation.run_id or "explain", {}, records))
    picture.legends = _LEGENDS
    return str(draw(picture, "mermaid"))


def show_why(args: argparse.Namespace, factory: Any, info: dict[str, Any], records: dict[str, str]) -> int:
    """``cascade runs show ID --why NODE``: why that node of the run ran (or did not)."""
    from .._run.why import History, parse_records, recorded_key, why_missing

    parsed = parse_records(records)
    matches = [node_id for node_id in parsed if node_id.startswith(args.why)] if args.why else []
    if len(matches) != 1:
        what = "no node" if not matches else f"{len(matches)} nodes"
        raise UsageError(
            f"{what} of run {args.run_id} with an id starting {args.why!r}: "
            f"'cascade runs show {args.run_id}' lists its nodes"
        )
    node_id = matches[0]
    record = parsed[node_id]
    task, status = record.get("task", "?"), record.get("status", "?")
    cause: dict[str, Any] = {"cause": status, "reason": None, "changed": []}
    if status == "cached":
        cause.update(cause="cached", reason="served from the cache")
    elif status == "skipped":
        cause.update(cause="skipped", reason=record.get("reason") or "skipped")
    elif status == "failed":
        cause.update(cause="failed", reason=f"it ran and failed: {record.get('error') or '?'}")
    elif status == "done" and recorded_key(record) is None:
        cause.update(cause="not cached", reason="not cached (cache=False): it runs when its run holds no result for it")
    elif status == "done":
        of_task = (r.get("code_units") for r in parsed.values() if r.get("task") == task)
        units: dict[str, str] = next((found for found in of_task if isinstance(found, dict)), {})
        reran = [
            parsed[up].get("task", "?")
            for up in record.get("upstream") or ()
            if up in parsed and parsed[up].get("status") == "done"
        ]
        history = History.of_runs(factory, before=info.get("created"), skip=args.run_id)
        code = (record.get("code", ""), units)
        key = recorded_key(record) or ""
        cause = why_missing(task, key, code, record.get("inputs") or {}, reran, history).as_dict()
    payload = {"run_id": args.run_id, "node_id": node_id, "task": task, "status": status, **cause}
    if args.json:
        print_json(payload)
    else:
        print(f"{task} [{node_id[:12]}] in run {args.run_id}: {status}: {cause['reason']}")
    return EXIT_OK
