"""Argument parsing, exit codes and error printing shared by every subcommand.

Exit codes: 0 fine, 1 a check or a run failed, 2 bad usage or input. Errors are one line
on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from .._errors import CascadeError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    from . import _backends, _run, _runs

    parser = _Parser(prog="cascade", description="Run Cascade workflows and manage their backends.")
    parser.add_argument("--version", action="version", version=f"cascade-core {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _backends.add_parser(commands)
    _run.add_parser(commands)
    _runs.add_parsers(commands)
    return parser


def _version() -> str:
    import cascade_core

    return str(cascade_core.__version__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cascade`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        return int(args.handler(args) or EXIT_OK)
    except CascadeError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
