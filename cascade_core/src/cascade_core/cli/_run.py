"""``cascade run``: run a workflow target from a file or module, with progress and a resume hint."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from .._errors import CascadeError, TargetError, UsageError
from ._main import EXIT_FAILED, EXIT_OK

STATE_ENV = "CASCADE_STATE"
CACHE_ENV = "CASCADE_CACHE"
DEFAULT_STORE = "sqlite:///.cascade.db"


def default_state() -> str:
    return os.environ.get(STATE_ENV, DEFAULT_STORE)


def default_cache() -> str:
    return os.environ.get(CACHE_ENV, DEFAULT_STORE)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="run a workflow target",
        description="Run TARGET, given as path/to/file.py:NAME or package.module:NAME, where NAME is a lazy "
        "result or a function returning one.",
    )
    parser.add_argument("target", metavar="PATH_OR_MODULE:TARGET")
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a param (repeatable); converted with the param's declared type",
    )
    parser.add_argument(
        "--state", default=None, metavar="URI", help=f"state backend URI (default: ${STATE_ENV} or {DEFAULT_STORE})"
    )
    parser.add_argument(
        "--cache", default=None, metavar="URI", help=f"cache backend URI (default: ${CACHE_ENV} or {DEFAULT_STORE})"
    )
    parser.add_argument("--run-id", default=None, help="resume or name the run (default: a fresh id)")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="at most N tasks at once")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--no-progress", action="store_true", help="no live progress line on a terminal")
    parser.set_defaults(handler=run_command)


def parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--param takes NAME=VALUE, got {item!r}")
        params[name.strip()] = value
    return params


def load_target(spec: str) -> Any:
    """Import ``file.py:name`` or ``module:name`` and return a lazy result (calling a function if needed)."""
    from .._task import LazyResult, Task

    location, colon, name = spec.rpartition(":")
    if not colon or not location or not name:
        raise UsageError(f"target {spec!r} must look like path/to/file.py:NAME or package.module:NAME")
    if location.endswith(".py") or os.sep in location or "/" in location:
        path = Path(location)
        if not path.is_file():
            raise UsageError(f"no such file: {location}")
        # Named after the file, as a script run directly names its tasks (see _task._module_name).
        module_name = path.stem
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(f"cannot import {location}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.parent.resolve()))
        module_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(location)
        except ImportError as exc:
            raise UsageError(f"cannot import module {location!r}: {exc}") from exc
    try:
        obj = getattr(module, name)
    except AttributeError:
        raise UsageError(f"{location} has no attribute {name!r}") from None
    if isinstance(obj, (LazyResult, list, dict, tuple)):
        return obj
    if isinstance(obj, Task) or callable(obj):
        value = obj()
        if isinstance(value, (LazyResult, list, dict, tuple)):
            return value
        raise TargetError(f"{spec} returned {type(value).__name__}, not a lazy result: return a task call")
    raise TargetError(f"{spec} is {type(obj).__name__}, not a lazy result or a function returning one")


def run_command(args: argparse.Namespace) -> int:
    import json
    import time

    from .._engine import Engine
    from .._uri import BackendURI
    from ._progress import make_progress

    params = parse_params(args.param)
    state_uri = BackendURI.parse(args.state or default_state())
    cache_uri = BackendURI.parse(args.cache or default_cache())
    target = load_target(args.target)
    from .._engine import new_run_id

    run_id = args.run_id or new_run_id()
    progress = make_progress(enabled=not args.no_progress and not args.json)
    engine = Engine(state_uri, cache_uri, max_workers=args.workers, observers=[progress] if progress else [])
    started = time.perf_counter()
    try:
        report = engine.execute(target, params, run_id=run_id)
    finally:
        if progress:
            progress.close()
    duration = round(time.perf_counter() - started, 6)
    resume = _resume_command(args, run_id)
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": report.run_id,
                    "status": report.status,
                    "counts": report.counts,
                    "duration_s": duration,
                    "result": _jsonable(report.value),
                    **(
                        {"failed_task": report.failed_task, "error": str(report.error), "resume": resume}
                        if report.error
                        else {}
                    ),
                }
            )
        )
    else:
        counts = ", ".join(f"{v} {k}" for k, v in report.counts.items() if v and k != "total")
        print(f"run {report.run_id} {report.status} in {duration:.2f}s ({counts or 'nothing to do'})")
        if report.error is None:
            print(f"result: {report.value!r}")
    if report.error is not None:
        print(f"error: task {report.failed_task!r} failed: {_cause(report.error)}", file=sys.stderr)
        print(f"to resume: {resume}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _cause(error: CascadeError) -> str:
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


def _resume_command(args: argparse.Namespace, run_id: str) -> str:
    from .._uri import BackendURI

    words = ["cascade", "run", args.target]
    for item in args.param:
        words += ["--param", item]
    # URIs are shown masked: secrets never reach the terminal.
    if args.state:
        words += ["--state", str(BackendURI.parse(args.state))]
    if args.cache:
        words += ["--cache", str(BackendURI.parse(args.cache))]
    if args.workers:
        words += ["--workers", str(args.workers)]
    words += ["--run-id", run_id]
    return shlex.join(words)


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)
