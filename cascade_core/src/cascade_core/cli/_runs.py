"""``cascade runs list|show|forget`` and ``cascade cache clear``: inspect and clean stored runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._errors import BackendError, UsageError
from ._main import EXIT_OK
from ._output import print_json, print_table
from ._run import CACHE_ENV, STATE_ENV, default_cache, default_state


def add_parsers(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list, show and forget stored runs")
    sub = runs.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    state_help = f"state backend URI (default: ${STATE_ENV} or the cascade run default)"

    listing = sub.add_parser("list", help="the runs a state store holds")
    listing.add_argument("--state", default=None, metavar="URI", help=state_help)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=list_runs)

    show = sub.add_parser("show", help="each task of one run: status, timing, result size")
    show.add_argument("run_id")
    show.add_argument("--state", default=None, metavar="URI", help=state_help)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=show_run)

    forget = sub.add_parser("forget", help="delete everything stored for one run")
    forget.add_argument("run_id")
    forget.add_argument("--state", default=None, metavar="URI", help=state_help)
    forget.set_defaults(handler=forget_run)

    cache = commands.add_parser("cache", help="manage the result cache")
    cache_sub = cache.add_subparsers(dest="action", metavar="ACTION")
    cache_sub.required = True
    clear = cache_sub.add_parser("clear", help="delete cache entries (all, or one task's)")
    clear.add_argument("--cache", default=None, metavar="URI", help=f"cache URI (default: ${CACHE_ENV})")
    clear.add_argument("--task", default=None, metavar="NAME", help="only this task's entries (its full name)")
    clear.set_defaults(handler=clear_cache)


def _factory(uri_text: str | None) -> Any:
    from .._registry import registry
    from .._uri import BackendURI

    uri = BackendURI.parse(uri_text or default_state())
    factory = registry.state_factory(uri)
    if not callable(getattr(factory, "list_runs", None)) or not callable(getattr(factory, "delete_run", None)):
        raise BackendError(f"the state backend {uri} cannot list or delete runs (no RunCatalog capability)")
    return uri, factory


def _close(factory: Any) -> None:
    close = getattr(factory, "close", None)
    if callable(close):
        close()


def list_runs(args: argparse.Namespace) -> int:
    uri, factory = _factory(args.state)
    try:
        runs = sorted(factory.list_runs(), key=lambda run: run.get("created", ""), reverse=True)
    finally:
        _close(factory)
    if args.json:
        print_json(runs)
        return EXIT_OK
    rows = [
        [
            run["run_id"],
            run.get("status", "?"),
            run.get("created", ""),
            run.get("updated", ""),
            run.get("tasks", "?"),
            run.get("results", "?"),
            run.get("count_failed", "0"),
        ]
        for run in runs
    ]
    print_table(["run id", "status", "created", "updated", "tasks", "stored", "failed"], rows)
    return EXIT_OK


def show_run(args: argparse.Namespace) -> int:
    uri, factory = _factory(args.state)
    try:
        known = {run["run_id"] for run in factory.list_runs()}
        if args.run_id not in known:
            raise UsageError(f"no run {args.run_id!r} in {uri}: 'cascade runs list --state ...' shows the stored runs")
        backend = factory(args.run_id)
        try:
            info = backend.get_run_info()
            stored = backend.result_ids()
            skipped = backend.get_skip_reasons()
            records = backend.get_task_records() if callable(getattr(backend, "get_task_records", None)) else {}
        finally:
            backend.close()
    finally:
        _close(factory)
    tasks = []
    for node_id in sorted(set(stored) | set(skipped) | set(records)):
        record = json.loads(records[node_id]) if node_id in records else {}
        status = record.get("status", "done" if node_id in stored else "skipped")
        if node_id in stored and status in ("failed", "skipped"):
            status = "done"
        tasks.append(
            {
                "node_id": node_id,
                "task": record.get("task", "?"),
                "status": status,
                "reason": skipped.get(node_id) if status == "skipped" else record.get("error"),
                "duration_s": record.get("duration"),
                "size": record.get("size"),
            }
        )
    if args.json:
        print_json({"run_id": args.run_id, "info": info, "tasks": tasks})
        return EXIT_OK
    print(
        f"run {args.run_id}: {info.get('status', '?')}, created {info.get('created', '?')}, "
        f"updated {info.get('updated', '?')}"
    )
    print_table(
        ["task", "node", "status", "duration", "size", "why"],
        [
            [
                t["task"],
                t["node_id"][:12],
                t["status"],
                "" if t["duration_s"] is None else f"{t['duration_s']:.3f}s",
                "" if t["size"] is None else t["size"],
                t["reason"] or "",
            ]
            for t in tasks
        ],
    )
    return EXIT_OK


def forget_run(args: argparse.Namespace) -> int:
    uri, factory = _factory(args.state)
    try:
        existed = factory.delete_run(args.run_id)
    finally:
        _close(factory)
    if not existed:
        raise UsageError(f"no run {args.run_id!r} in {uri}: nothing deleted")
    print(f"forgot run {args.run_id}")
    return EXIT_OK


def clear_cache(args: argparse.Namespace) -> int:
    from .._registry import registry
    from .._uri import BackendURI

    uri = BackendURI.parse(args.cache or default_cache())
    cache = registry.cache_backend(uri)
    try:
        if not callable(getattr(cache, "clear", None)):
            raise BackendError(f"the cache backend {uri} cannot be cleared (no CacheCatalog capability)")
        removed = cache.clear(f"{args.task}:" if args.task else "")
    finally:
        cache.close()
    print(f"removed {removed} cache entr{'y' if removed == 1 else 'ies'}")
    return EXIT_OK
