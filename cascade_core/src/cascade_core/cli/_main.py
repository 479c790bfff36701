"""Argument parsing, exit codes and error printing shared by every subcommand.

Exit codes (``_exit``): 0 fine; 1 a run or a check failed, a store, a plugin or a stored
payload failed, or an unexpected error; 2 bad usage or input; 130 interrupted. Errors are one line on stderr
starting with ``error:``; ``--debug`` (before or after the command) adds the traceback.
With ``--json`` an error is also printed on stdout as a JSON object (``error``,
``error_type``, ``exit_code``), so that whoever parses stdout always gets JSON.
Secrets of the URIs given are masked in everything printed (see ``_secrets``).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from .._errors import CascadeError, UsageError
from ._exit import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, exit_code


class _Parser(argparse.ArgumentParser):
    """Usage errors become UsageError (one line); every (sub)command takes ``--debug``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SUPPRESS: a subcommand's default must not overwrite a --debug given before it.
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _VersionAction(argparse.Action):
    """``--version``, computed only when asked (reading package metadata costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        import cascade_core

        print(f"cascade-core {cascade_core.__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    from . import _backends, _blobs, _explain, _graph, _limits, _run, _runs

    parser = _Parser(prog="cascade", description="Run Cascade workflows and manage their backends.")
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _run.add_parser(commands)
    _graph.add_parser(commands)
    _explain.add_parser(commands)
    _runs.add_parsers(commands)
    _backends.add_parser(commands)
    _blobs.add_parser(commands)
    _limits.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cascade`` console script."""
    from ._logs import cli_logging
    from ._secrets import collect_secrets, scrubbed_output

    if argv is None:
        _forget_working_directory()
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    as_json = "--json" in args_list
    with scrubbed_output(collect_secrets(args_list, os.environ)), cli_logging(debug):
        try:
            return _dispatch(args_list)
        except CascadeError as exc:
            _print_error(exc, debug)
            return _json_error(exc, exit_code(exc)) if as_json else exit_code(exc)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_OK
        except SystemExit as exc:  # --help, --version, or a workflow that called sys.exit()
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_FAILED)
        except Exception as exc:
            _print_error(exc, debug, hint=" (unexpected; 'cascade --debug ...' shows the traceback)")
            return _json_error(exc, EXIT_FAILED) if as_json else EXIT_FAILED


def _forget_working_directory() -> None:
    """Take the working directory off ``sys.path`` where ``python -m cascade_core`` put it.

    So the command imports the same modules as the ``cascade`` script: a workflow file named
    like a standard module (``json.py``) cannot replace that module under the CLI. Module
    targets still import from the working directory (see ``_target``).
    """
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


def _dispatch(args_list: list[str]) -> int:
    args = build_parser().parse_args(args_list)
    return int(args.handler(args) or EXIT_OK)


def _print_error(exc: BaseException, debug: bool, hint: str = "") -> None:
    if debug:
        traceback.print_exc()
    text = one_line(exc) if isinstance(exc, CascadeError) else f"{type(exc).__name__}: {one_line(exc)}"
    print(f"error: {text}{'' if debug else hint}", file=sys.stderr)


def _json_error(exc: BaseException, code: int) -> int:
    from ._output import print_json

    print_json({"error": one_line(exc), "error_type": type(exc).__name__, "exit_code": code})
    return code


def one_line(exc: BaseException) -> str:
    try:
        text = str(exc).strip()
    except Exception:  # an exception whose message cannot be read must not hide the error
        return f"{type(exc).__name__} (its message could not be read)"
    return text.splitlines()[0] if text else type(exc).__name__


def _silence_stdout() -> None:
    # The reader went away (`cascade runs list | head`): point stdout at /dev/null so that the
    # interpreter's final flush does not complain about the broken pipe.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
