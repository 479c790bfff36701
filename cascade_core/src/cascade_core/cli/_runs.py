"""``cascade runs list|show|forget`` and ``cascade cache clear``: inspect and clean stored runs.

These commands only read or delete: pointed at a sqlite file that does not exist, they
say so instead of creating an empty store.

Run info is stored as strings; it is shown with its counts as integers, and a ``running``
run whose run lease has expired (its driver died) as ``abandoned``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._errors import BackendError, UsageError
from ._exit import EXIT_OK
from ._graph import add_picture_options, show_pictures, wants_pictures
from ._output import describe_counts, plural, print_json, print_table
from ._stores import (
    CACHE_ENV,
    DEFAULT_STORE,
    STATE_ENV,
    close,
    default_cache,
    default_state,
    missing_file,
    no_run,
    open_catalog,
    parse_uri,
    shown_info,
)


def add_parsers(commands: Any) -> None:
    runs = commands.add_parser(
        "runs", help="list, show and forget stored runs", description="List, show and forget stored runs."
    )
    sub = runs.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    state_help = f"state backend URI (default: ${STATE_ENV} or {DEFAULT_STORE})"

    listing = sub.add_parser("list", help="the runs a state store holds, newest first")
    listing.add_argument("--state", default=None, metavar="URI", help=state_help)
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=list_runs)

    show = sub.add_parser("show", help="each task of one run: status, timing, result size")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--state", default=None, metavar="URI", help=state_help)
    show.add_argument("--json", action="store_true", help="print a JSON object")
    show.add_argument("--why", default=None, metavar="NODE", help="why the node (an id or its start) ran, or did not")
    add_picture_options(show)  # --graph, --html (see _graph)
    show.set_defaults(handler=show_run)

    forget = sub.add_parser("forget", help="delete everything stored for one run")
    forget.add_argument("run_id", metavar="RUN_ID")
    forget.add_argument("--state", default=None, metavar="URI", help=state_help)
    forget.set_defaults(handler=forget_run)

    cache = commands.add_parser("cache", help="manage the result cache", description="Manage the result cache.")
    cache_sub = cache.add_subparsers(dest="action", metavar="ACTION")
    cache_sub.required = True
    clear = cache_sub.add_parser("clear", help="delete cache entries (all, or one task's)")
    clear.add_argument(
        "--cache", default=None, metavar="URI", help=f"cache backend URI (default: ${CACHE_ENV} or {DEFAULT_STORE})"
    )
    clear.add_argument("--task", default=None, metavar="NAME", help="only this task's entries (its full name)")
    clear.set_defaults(handler=clear_cache)


























_COUNT_ORDER = ("total", "executed", "cached", "resumed", "by_other_drivers", "failed", "skipped")


def _counts(info: Mapping[str, Any]) -> dict[str, Any]:
    """The outcome counts of the run's last finished attempt (``count_executed`` -> ``executed``),
    in the order ``cascade run`` prints them (a backend may return its keys sorted)."""
    counts = {key[len("count_") :]: value for key, value in info.items() if key.startswith("count_")}
    rank = {name: i for i, name in enumerate(_COUNT_ORDER)}
    return dict(sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def list_runs(args: argparse.Namespace) -> int:
    uri = parse_uri(args.state or default_state())
    stored: list[dict[str, str]] = []
    if not missing_file(uri):
        factory = open_catalog(uri)
        try:
            stored = factory.list_runs()
        finally:
            close(factory)
    now = datetime.now(timezone.utc)
    runs = [shown_info(run, now) for run in stored]
    runs.sort(key=lambda run: (run.get("created", ""), run["run_id"]), reverse=True)
    if args.json:
        print_json(runs)
        return EXIT_OK
    if not runs:
        print(f"no runs in {uri}")
        return EXIT_OK
    rows = [
        [
            run["run_id"],
            run.get("status", "?"),
            run.get("created", ""),
            run.get("updated", ""),
            run.get("tasks", "?"),
            run.get("results", "?"),
            run.get("count_failed", 0),
        ]
        for run in runs
    ]
    print_table(["run id", "status", "created", "updated", "tasks", "stored", "failed"], rows)
    return EXIT_OK


def _task_rows(stored: set[str], skipped: dict[str, str], records: dict[str, str]) -> list[dict[str, Any]]:
    """One row per node the run knows of, in the order they finished, then by task name."""
    from .._run.expansion import GRAPH_SUFFIX

    tasks = []
    stored = {node_id for node_id in stored if not node_id.endswith(GRAPH_SUFFIX)}  # a returned graph: not a node
    for node_id in stored | set(skipped) | set(records):
        try:
            record = json.loads(records[node_id]) if node_id in records else {}
        except ValueError:
            record = {}
        status = record.get("status") or ("done" if node_id in stored else "skipped")
        if node_id in stored and status in ("failed", "skipped"):
            status = "done"  # a later attempt of the run stored it
        reason = None
        if status == "skipped":
            reason = skipped.get(node_id) or record.get("reason")
        elif status == "failed":
            reason = record.get("error")
        tasks.append(
            {
                "node_id": node_id,
                "task": record.get("task", "?"),
                "status": status,
                "reason": reason,
                "duration_s": record.get("duration"),
                "size": record.get("size"),
                "finished": record.get("finished"),
                "parent": record.get("parent"),  # the map or router that added it during the run
            }
        )
    # Records without a time (a backend without task records) go last.
    tasks.sort(key=lambda t: (t["finished"] is None, t["finished"] or "", t["task"], t["node_id"]))
    return tasks


def show_run(args: argparse.Namespace) -> int:
    if args.why is not None and (args.graph is not None or args.html is not None):
        raise UsageError("--why prints one node's cause: leave out --graph and --html")
    if wants_pictures(args):
        return show_pictures(args)
    uri = parse_uri(args.state or default_state())
    if missing_file(uri):
        raise no_run(args.run_id, uri)
    factory = open_catalog(uri)
    try:
        if args.run_id not in {run["run_id"] for run in factory.list_runs()}:
            raise no_run(args.run_id, uri)
        backend = factory(args.run_id)
        try:
            info = backend.get_run_info()
            stored = backend.result_ids()
            skipped = backend.get_skip_reasons()
            records = backend.get_task_records() if callable(getattr(backend, "get_task_records", None)) else {}
        finally:
            backend.close()
        if args.why is not None:
            from ._explain import show_why

            return show_why(args, factory, info, records)
    finally:
        close(factory)
    info = shown_info(info, datetime.now(timezone.utc))
    tasks = _task_rows(stored, skipped, records)
    if info.get("status") == "succeeded":
        for t in tasks:
            if t["status"] == "failed":  # a node of an earlier attempt that a changed param replaced
                t["reason"] = f"earlier attempt: {t['reason'] or '?'}"
    dynamic = _dynamic(args.run_id, info, stored, skipped, records)
    if args.json:
        print_json({"run_id": args.run_id, "info": info, "tasks": tasks, **dynamic})
        return EXIT_OK
    status = info.get("status", "?")
    counts = describe_counts(_counts(info)) if status in ("succeeded", "failed") else ""
    print(
        f"run {args.run_id}: {status}, target {info.get('target', '?')}, "
        f"{plural(info.get('tasks', '?'), 'task')}{f' ({counts})' if counts else ''}, "
        f"created {info.get('created', '?')}, updated {info.get('updated', '?')}"
    )
    driver = info.get("driver") or "unknown"
    if status == "abandoned":
        what = "is gone" if info.get("abandoned_reason") == "driver process gone" else "stopped renewing its run lease"
        print(
            f"abandoned since {info['abandoned_since']}: its driver ({driver}) {what}; "
            f"rerun the target with --run-id {args.run_id} to resume"
        )
    elif status == "running" and info.get("driver"):
        started = f" since {info['driver_started']}" if info.get("driver_started") else ""
        print(f"driver: {driver}{started}, run lease until {info.get('lease_expires', '?')}")
    if status == "failed" and info.get("error"):
        print(f"failure: {info['error']}")
    if "waited_limits_s" in info or "waited_resources_s" in info:  # docs/concepts.md, "Limits"
        limits, resources = info.get("waited_limits_s", "?"), info.get("waited_resources_s", "?")
        print(f"waited: {limits}s on limits, {resources}s on resources (summed over tasks)")
    print_table(
        ["task", "node", "status", "finished", "duration", "size", "why"],
        [
            [
                t["task"],
                t["node_id"][:12],
                t["status"],
                _clock(t["finished"]),
                "" if t["duration_s"] is None else f"{t['duration_s']:.3f}s",
                "" if t["size"] is None else _size(t["size"]),
                t["reason"] or "",
            ]
            for t in tasks
        ],
    )
    from ..pictures.summary import summary_lines

    for line in summary_lines(dynamic):
        print(line)
    return EXIT_OK


def _dynamic(run_id: str, info: Any, stored: set[str], skipped: dict[str, str], records: dict[str, str]) -> Any:
    """Maps, routers and skipped nodes of the run (pictures/summary.py)."""
    from ..pictures.run_view import RunView
    from ..pictures.summary import dynamic_summary

    return dynamic_summary(RunView.from_stored(run_id, info, stored, skipped, records))


def _clock(iso: str | None) -> str:
    """``2026-11-27T22:10:40.802+00:00`` -> ``22:10:40.802`` (the date is in the header)."""
    if not iso:
        return ""
    time_part = iso.partition("T")[2] or iso
    for sign in ("+", "-", "Z"):
        time_part = time_part.split(sign)[0]
    return time_part


def _size(size: Any) -> str:
    try:
        n = int(size)
    except (TypeError, ValueError):
        return str(size)
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def forget_run(args: argparse.Namespace) -> int:
    uri = parse_uri(args.state or default_state())
    if missing_file(uri):
        raise no_run(args.run_id, uri)
    factory = open_catalog(uri)
    try:
        existed = factory.delete_run(args.run_id)
    finally:
        close(factory)
    if not existed:
        raise no_run(args.run_id, uri)
    print(f"forgot run {args.run_id}")
    return EXIT_OK


def clear_cache(args: argparse.Namespace) -> int:
    from .._plugins.registry import registry

    if args.task is not None and not args.task.strip():
        # An unset shell variable (--task "$TASK") must not widen the command to the whole cache.
        raise UsageError("--task is empty: give a task's full name (as 'cascade runs show' prints it), or omit --task")
    uri = parse_uri(args.cache or default_cache())
    removed = 0
    if not missing_file(uri):
        cache = registry.cache_backend(uri)
        try:
            if not callable(getattr(cache, "clear", None)):
                raise BackendError(f"the cache backend {uri} cannot be cleared (no CacheCatalog capability)")
            removed = cache.clear(f"{args.task}:" if args.task else "")
        finally:
            cache.close()
    what = f" of task {args.task}" if args.task else ""
    print(f"removed {plural(removed, 'cache entry', 'cache entries')}{what} from {uri}")
    return EXIT_OK
