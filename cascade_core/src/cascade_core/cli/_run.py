"""``cascade run``: run a workflow target with progress, a summary and, on failure, the resume command."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from .._errors import DefinitionError, UsageError
from .._store.blob_refs import BLOBS_ENV
from ._exit import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from ._limits import parse_resources
from ._progress import PROGRESS_INTERVAL
from ._stores import CACHE_ENV, DEFAULT_STORE, EXECUTOR_ENV, STATE_ENV, default_cache, default_state
from ._target import add_param_option, parse_params, target_command

RESULT_REPR_LIMIT = 2000  # characters of the result's repr in the text summary
PROCESS_LOCAL_STATES = ("memory",)  # schemes whose runs end with the process: no new process resumes them


def positive_int(text: str, maximum: int = 10_000) -> int:
    """A whole number from 1 to ``maximum`` (argparse names the flag in the error)."""
    stripped = text.strip()
    value = int(stripped) if stripped.isascii() and stripped.isdigit() and len(stripped) <= 18 else 0
    if not 1 <= value <= maximum:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 and at most {maximum}, got {text!r}")
    return value


def seconds(text: str) -> float:
    """A number of seconds from 0.01 to 3600 (argparse names the flag in the error)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.01 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0.01 to 3600, got {text!r}")
    return value


def add_parser(commands: Any) -> None:
    parser = target_command(
        commands,
        "run",
        help="run a workflow target",
        description="Run TARGET, given as path/to/file.py:NAME or package.module:NAME, where NAME is a lazy "
        "result or a function returning one. Exit 0 when the run succeeded, 1 when a task failed "
        "(the resume command is printed), 2 for bad input.",
    )
    add_param_option(
        parser, "set a param, or a parameter of the target function (repeatable); converted with its declared type"
    )
    parser.add_argument(
        "--state", default=None, metavar="URI", help=f"state backend URI (default: ${STATE_ENV} or {DEFAULT_STORE})"
    )
    parser.add_argument(
        "--cache", default=None, metavar="URI", help=f"cache backend URI (default: ${CACHE_ENV} or {DEFAULT_STORE})"
    )
    parser.add_argument("--run-id", default=None, metavar="ID", help="resume or name the run (default: a fresh id)")
    parser.add_argument(
        "--executor",
        default=None,
        metavar="URI",
        help=f"where tasks run: threads://?max_workers=N, inline://, or a plugin's (default: ${EXECUTOR_ENV} or threads://)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="at most N tasks at once (threads://?max_workers=N)",
    )
    parser.add_argument(
        "--blobs",
        default=None,
        metavar="URI",
        help="store results over a threshold once by content in this blob store, such as "
        "file:///var/cascade/blobs?threshold=1MiB (default: $CASCADE_BLOBS, else none)",
    )
    parser.add_argument(
        "--leases",
        action="store_true",
        help="share the run: several drivers of one run id (on several machines) split its tasks, each run "
        "once (without it, a second driver of a live run id is refused)",
    )
    parser.add_argument(
        "--resources",
        default=None,
        metavar="NAME=N,...",
        help="the run's resources, such as gpu=2,memory_gb=32: tasks' resources= never exceed them together",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end (no progress)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display, only the summary")
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="one line per task event (started, finished, cached, ...)"
    )
    parser.add_argument(
        "--progress-interval",
        type=seconds,
        default=PROGRESS_INTERVAL,
        metavar="SECONDS",
        help=f"off a terminal, print the counts every SECONDS (default: {PROGRESS_INTERVAL:g})",
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from .._plugins.resolve import check_run_id, new_run_id
    from .._run.engine import Engine
    from .._uri import BackendURI
    from ._logs import CliHandler
    from ._progress import QUIET, Progress, choose_mode
    from ._target import load_target

    params = parse_params(args.param)
    state_uri = BackendURI.parse(args.state or default_state())
    cache_uri = BackendURI.parse(args.cache or default_cache())
    executor_text = args.executor or os.environ.get(EXECUTOR_ENV)
    executor_uri = BackendURI.parse(executor_text) if executor_text else None
    blobs_text = args.blobs or os.environ.get(BLOBS_ENV)
    blobs_uri = BackendURI.parse(blobs_text) if blobs_text else None
    run_id = check_run_id(args.run_id) if args.run_id is not None else new_run_id()
    target, params = load_target(args.target, params)
    mode = choose_mode(sys.stderr, quiet=args.json or args.no_progress)
    progress = Progress(sys.stderr, mode, verbose=args.verbose, interval=args.progress_interval)
    handler = next((h for h in _cascade_handlers() if isinstance(h, CliHandler)), None)
    if handler is not None and progress.mode != QUIET:
        handler.sink = progress.write_line  # log lines go above the live line
    engine = Engine(
        state_uri,
        cache_uri,
        executor=executor_uri,
        max_workers=args.workers,
        observers=[progress],
        leases=args.leases,
        blob_store=blobs_uri,
        resources=parse_resources(args.resources),
    )
    resume = _resume_command(args, run_id, state_uri)
    engine.resume_command = resume.command or ""  # kept in the run info: the HTML report prints it
    try:  # errors go to _main, which prints them (as JSON too under --json) with their exit code
        report = engine.execute(target, params, run_id=run_id)
    except DefinitionError as exc:
        flagged = _as_flag(exc, args.workers)
        if flagged is None:
            raise
        raise flagged from None
    except KeyboardInterrupt:  # the engine released its leases on the way out: the resume starts at once
        progress.close()
        print(f"interrupted: run {run_id} stopped; finished tasks are stored", file=sys.stderr)
        _print_resume(resume)
        return EXIT_INTERRUPTED
    finally:
        progress.close()
        if handler is not None:
            handler.sink = None
    failures = progress.failures or (
        [(report.failed_task or "?", _cause(report.error))] if report.error is not None else []
    )
    if args.json:
        payload: dict[str, Any] = {
            "run_id": report.run_id,
            "status": report.status,
            "counts": report.counts,
            "duration_s": round(report.duration_s, 6),
            "result": _jsonable(report.value) if report.error is None else None,
        }
        if report.error is not None:
            payload.update(failed_task=report.failed_task, error=_cause(report.error), resume=resume.command)
        print(_dumps(payload))
    else:
        from ._output import describe_counts, plural

        print(
            f"run {report.run_id} {report.status} in {report.duration_s:.2f}s: "
            f"{plural(report.counts.get('total', 0), 'task')} ({describe_counts(report.counts) or 'nothing to do'})"
        )
        if report.error is None:
            print(f"result: {_short_repr(report.value)}")
    if report.error is None:
        return EXIT_OK
    for task, cause in failures:
        print(f"error: task {task!r} failed: {cause}", file=sys.stderr)
    _print_resume(resume)
    return EXIT_FAILED


def _cascade_handlers() -> list[Any]:
    import logging

    return list(logging.getLogger("cascade").handlers)


def _cause(error: BaseException | None) -> str:
    from ._progress import one_line

    if error is None:
        return ""
    cause = getattr(error, "cause", None) or error
    return one_line(cause)


def _as_flag(exc: DefinitionError, workers: int | None) -> UsageError | None:
    """The engine's ``max_workers=N`` conflict in the words of the command line: ``--workers N``."""
    text = str(exc)
    shorthand = f"max_workers={workers}"
    if workers is None or not text.startswith(shorthand + " "):
        return None
    rest = (
        text[len(shorthand) :].replace("as max_workers", "as --workers").replace("drop max_workers", "drop --workers")
    )
    return UsageError(f"--workers {workers}{rest}")


class _Resume:
    def __init__(self, command: str | None, masked: list[str], why_not: str = "") -> None:
        self.command = command  # None: no new process can resume the run (``why_not`` says why)
        self.masked = masked  # options whose URI is shown with *** for its secrets
        self.why_not = why_not


def _resume_command(args: argparse.Namespace, run_id: str, state_uri: Any) -> _Resume:
    """The command that resumes this run: the same target, params and stores, with ``--run-id``.

    A store given by ``$CASCADE_STATE`` / ``$CASCADE_CACHE`` is left to the variable, so the
    command stays runnable without printing a secret. A URI given on the command line is shown
    masked; the note printed with it says so. A ``memory://`` state ends with this process:
    there is no command, and ``_print_resume`` says so.
    """
    from .._uri import BackendURI

    if state_uri.scheme in PROCESS_LOCAL_STATES:
        return _Resume(
            None,
            [],
            f"run {run_id} cannot be resumed: its state {state_uri} lived in this process only; "
            "give --state sqlite:///FILE.db (or another lasting store) to make a run resumable",
        )
    words = ["cascade", "run", args.target]
    for item in args.param:
        words += ["--param", item]
    masked = []
    options = (("--state", args.state), ("--cache", args.cache), ("--executor", args.executor), ("--blobs", args.blobs))
    for option, text in options:
        if text:
            uri = BackendURI.parse(text)
            words += [option, str(uri)]
            if uri.secrets():
                masked.append(option)
    if args.workers:
        words += ["--workers", str(args.workers)]
    if args.leases:
        words.append("--leases")
    if args.resources:
        words += ["--resources", args.resources]
    words += ["--run-id", run_id]
    return _Resume(shlex.join(words), masked)


def _print_resume(resume: _Resume) -> None:
    if resume.command is None:
        print(f"note: {resume.why_not}", file=sys.stderr)
        return
    print(f"to resume: {resume.command}", file=sys.stderr)
    if resume.masked:
        names = " and ".join(resume.masked)
        env = {"--state": STATE_ENV, "--cache": CACHE_ENV, "--executor": EXECUTOR_ENV, "--blobs": BLOBS_ENV}
        variables = " and ".join(f"${env[option]}" for option in resume.masked)
        print(
            f"note: secrets in {names} are shown as ***: put them back, or set {variables} and drop {names}",
            file=sys.stderr,
        )


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, allow_nan=False)


def _jsonable(value: Any) -> Any:
    """The value itself when it is JSON-serializable (no NaN or infinity), else its repr."""
    try:
        _dumps(value)
        return value
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _short_repr(value: Any) -> str:
    text = repr(value)
    if len(text) > RESULT_REPR_LIMIT:
        return text[:RESULT_REPR_LIMIT] + f"... ({len(text)} characters; --json prints all of it)"
    return text
