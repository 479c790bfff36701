"""``cascade graph`` and ``cascade runs show ID --graph FORMAT / --html FILE``: pictures of graphs and runs.

The drawing lives in ``cascade_core.pictures``; this module parses the options, loads the
target and the run, and writes the result. Text written to a file goes through the same
secret scrubbing as the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .._errors import UsageError
from ._exit import EXIT_OK

FORMATS = ("mermaid", "dot", "json", "svg", "png")
DEFAULT_COLLAPSE = 200  # as cascade_core.pictures (not imported here: `cascade run` need not load it)
_EXTENSIONS = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot", ".json": "json"}
_EXTENSIONS.update({".svg": "svg", ".png": "png"})


def _collapse(text: str) -> int:
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit() and 1 <= len(stripped) <= 9 and int(stripped) >= 1):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(stripped)


def _common_options(parser: argparse.ArgumentParser) -> None:
    from ._target import add_param_option

    add_param_option(parser, "set a param, or a parameter of the target function (repeatable), as for 'cascade run'")
    parser.add_argument(
        "--output", "-o", default=None, metavar="FILE", help="write the graph to FILE (default: standard output)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--collapse",
        type=_collapse,
        default=DEFAULT_COLLAPSE,
        metavar="N",
        help="above N task calls, draw the calls of one task at one depth as one node (default: 200)",
    )
    group.add_argument("--no-collapse", action="store_true", help="draw every task call, however many")


def add_parser(commands: Any) -> None:
    from ._stores import DEFAULT_STORE, STATE_ENV
    from ._target import target_command

    parser = target_command(
        commands,
        "graph",
        help="draw a workflow's graph without running it",
        description="Draw TARGET's graph (path/to/file.py:NAME or package.module:NAME) without running it: "
        "one node per task call, edges from inputs to consumers. With --run-id, nodes are coloured by what "
        "happened in that run. svg and png need Graphviz's dot program.",
    )
    parser.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default=None,
        help="mermaid (the default), dot, json, svg or png; -o FILE's extension picks one when not given",
    )
    parser.add_argument("--run-id", default=None, metavar="ID", help="colour the nodes by what happened in run ID")
    parser.add_argument(
        "--state", default=None, metavar="URI", help=f"state backend URI (default: ${STATE_ENV} or {DEFAULT_STORE})"
    )
    _common_options(parser)
    parser.set_defaults(handler=graph_command)


def add_picture_options(show: argparse.ArgumentParser) -> None:
    """``cascade runs show``'s options for pictures of the run."""
    show.add_argument(
        "--graph", choices=FORMATS, default=None, metavar="FORMAT", help=f"draw the run's graph: {', '.join(FORMATS)}"
    )
    show.add_argument("--html", default=None, metavar="FILE", help="write a self-contained HTML report of the run")
    show.add_argument(
        "--target",
        default=None,
        metavar="PATH_OR_MODULE:TARGET",
        help="the run's target, to rebuild its graph (needed only for records that do not name their edges)",
    )
    _common_options(show)


def wants_pictures(args: argparse.Namespace) -> bool:
    """Whether ``cascade runs show`` was asked for --graph or --html (their options alone are an error)."""
    if args.graph is not None or args.html is not None:
        return True
    given = [
        option
        for option, value in (("--target", args.target), ("--param", args.param), ("-o/--output", args.output))
        if value
    ]
    if args.no_collapse or args.collapse != DEFAULT_COLLAPSE:
        given.append("--collapse/--no-collapse")
    if given:
        raise UsageError(f"{given[0]} is for pictures: add --graph FORMAT or --html FILE")
    return False


def _collapse_of(args: argparse.Namespace) -> int | None:
    return None if args.no_collapse else args.collapse


def graph_command(args: argparse.Namespace) -> int:
    from ..pictures import draw, from_graph

    fmt = args.format or _format_of(args.output)
    graph = _build(args.target, args.param)
    run = _read_run(args.run_id, args.state) if args.run_id is not None else None
    if run is not None:
        _check_match(graph, run)
    _emit(draw(from_graph(graph, run, _collapse_of(args)), fmt), args.output, args)
    return EXIT_OK


def show_pictures(args: argparse.Namespace) -> int:
    """``cascade runs show ID --graph FORMAT`` and/or ``--html FILE``."""
    import cascade_core

    from ..pictures import draw, from_graph, from_run
    from ..pictures.report import report_html

    if args.json:
        raise UsageError("--json cannot be combined with --graph or --html: use --graph json")
    if args.output is not None and args.graph is None:
        raise UsageError("-o/--output writes the graph: add --graph FORMAT (the report goes to --html FILE)")
    if args.param and args.target is None:
        raise UsageError("--param needs --target: they rebuild the run's graph to draw its edges")
    run = _read_run(args.run_id, args.state)
    collapse = _collapse_of(args)
    if args.target is not None:
        graph = _build(args.target, args.param)
        _check_match(graph, run)
        picture = from_graph(graph, run, collapse)
    else:
        picture = from_run(run, collapse)
    if args.html is not None:
        page = report_html(run, picture, collapse=collapse, version=cascade_core.__version__)
        _write(args.html, _scrubbed(page, args))
        print(f"wrote {args.html}: the report of run {args.run_id}")
    if args.graph is not None:
        _emit(draw(picture, args.graph), args.output, args)
    return EXIT_OK


def _format_of(output: str | None) -> str:
    if output is None:
        return "mermaid"
    extension = os.path.splitext(output)[1].lower()
    if extension not in _EXTENSIONS:
        raise UsageError(f"cannot tell the format from {output!r}: add --format ({', '.join(FORMATS)})")
    return _EXTENSIONS[extension]


def _build(spec: str, items: list[str]) -> Any:
    from .._build.graph import build_graph
    from ._target import load_target, parse_params

    target, params = load_target(spec, parse_params(items))
    return build_graph(target, params)


def _read_run(run_id: str, state: str | None) -> Any:
    """The stored run ``run_id`` as a ``RunView``; a one-line error when there is none."""
    from datetime import datetime, timezone

    from ..pictures import RunView
    from ._stores import close, default_state, missing_file, no_run, open_catalog, parse_uri, shown_info

    uri = parse_uri(state or default_state())
    if missing_file(uri):
        raise no_run(run_id, uri)
    factory = open_catalog(uri)
    try:
        if run_id not in {run["run_id"] for run in factory.list_runs()}:
            raise no_run(run_id, uri)
        backend = factory(run_id)
        try:
            return RunView.read(backend, shown_info(backend.get_run_info(), datetime.now(timezone.utc)))
        finally:
            backend.close()
    finally:
        close(factory)


def _check_match(graph: Any, run: Any) -> None:
    if run.records and not any(node.id in run.records for node in graph.nodes):
        print(
            f"warning: no task of this graph is in run {run.run_id}: pass the --param values the run was started with",
            file=sys.stderr,
        )


def _scrubbed(text: str, args: argparse.Namespace) -> str:
    from .._masking import mask_credentials
    from ._secrets import collect_secrets, scrub

    return mask_credentials(scrub(text, collect_secrets([args.state or ""], os.environ)))


def _emit(data: str | bytes, output: str | None, args: argparse.Namespace) -> None:
    if isinstance(data, str):
        data = _scrubbed(data, args)
    if output is not None:
        _write(output, data)
    elif isinstance(data, bytes):
        if sys.stdout.isatty():
            raise UsageError("png is binary and stdout is a terminal: write it to a file with -o FILE")
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(data)


def _write(path: str, data: str | bytes) -> None:
    try:
        with open(path, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}")
