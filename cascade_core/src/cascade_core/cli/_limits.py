"""``cascade limits set|show|pause|resume|delete``: the named limits a state store keeps, and
``--resources NAME=N,...`` of ``cascade run`` (docs/cli.md, docs/concepts.md "Limits")."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .._errors import LimitError, UsageError
from ._output import print_json, print_table
from ._stores import DEFAULT_STORE, STATE_ENV, default_state, missing_file, parse_uri


def add_parser(commands: Any) -> None:
    limits = commands.add_parser(
        "limits",
        help="set, show, pause, resume and delete named limits",
        description="Named limits (concurrency, rate) kept in the state store, shared by every run using it.",
    )
    sub = limits.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    state_help = f"state backend URI (default: ${STATE_ENV} or {DEFAULT_STORE})"

    setting = sub.add_parser("set", help="create or replace a limit (what is not given is unset)")
    setting.add_argument("name", metavar="NAME")
    setting.add_argument("--concurrency", type=_whole, default=None, metavar="N", help="at most N tasks at once")
    setting.add_argument("--rate", default=None, metavar="N/s|N/m", help="at most N starts per second or minute")
    setting.add_argument("--burst", type=_whole, default=None, metavar="N", help="N starts at once (default: 1)")
    setting.add_argument("--state", default=None, metavar="URI", help=state_help)
    setting.set_defaults(handler=set_command)

    show = sub.add_parser("show", help="every limit (or those named): settings, holders, waiting, the rate now")
    show.add_argument("names", nargs="*", metavar="NAME")
    show.add_argument("--state", default=None, metavar="URI", help=state_help)
    show.add_argument("--json", action="store_true", help="print a JSON object: name -> its status")
    show.set_defaults(handler=show_command)

    for action, text in (
        ("pause", "no new task naming the limit starts; running ones finish"),
        ("resume", "let tasks naming the limit start again"),
        ("delete", "delete the limit (runs using it are no longer limited)"),
    ):
        command = sub.add_parser(action, help=text)
        command.add_argument("name", metavar="NAME")
        command.add_argument("--state", default=None, metavar="URI", help=state_help)
        command.set_defaults(handler=change_command, change=action)


def _whole(text: str) -> int:
    """A whole number for --concurrency and --burst (its range is checked with the limit)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _opened(args: argparse.Namespace, creating: bool = False) -> Any:
    """The LimitStore of ``--state`` (a context manager); a sqlite file that does not exist is
    refused, except by ``set``, which may create it."""
    from .._run.limit_admin import opened_limits

    uri = parse_uri(args.state or default_state())
    if not creating and missing_file(uri):
        raise UsageError(f"no state store at {uri}: 'cascade limits set' creates one, or give --state URI")
    return opened_limits(uri)


def set_command(args: argparse.Namespace) -> int:
    from .._store.limits import checked_settings

    settings = checked_settings(args.name, args.concurrency, args.rate, args.burst)
    with _opened(args, creating=True) as (store, label):
        store.set_limit(args.name, settings.concurrency, settings.rate, settings.per, settings.burst)
    print(f"limit {args.name} set in {label}: {_settings(dataclasses.asdict(settings))}")
    return 0


def _settings(limit: dict[str, Any]) -> str:
    """``concurrency 5, rate 10/s (burst 1)`` and the like."""
    parts = []
    if limit.get("concurrency") is not None:
        parts.append(f"concurrency {limit['concurrency']}")
    if limit.get("rate") is not None:
        unit = "s" if limit["per"] == 1.0 else "m"
        parts.append(f"rate {limit['rate']:g}/{unit} (burst {limit['burst']})")
    return ", ".join(parts)


def show_command(args: argparse.Namespace) -> int:
    with _opened(args) as (store, label):
        shown = store.get_limits(args.names or None)
    missing = [name for name in args.names if name not in shown]
    if missing:
        raise LimitError(f"no limit {missing[0]!r} in {label}: 'cascade limits show' lists them", limit=missing[0])
    if args.json:
        print_json(shown)
        return 0
    if not shown:
        print(f"no limits in {label}: 'cascade limits set NAME --concurrency N' sets one")
        return 0
    rows = []
    for name, limit in shown.items():
        unit = "s" if limit["per"] == 1.0 else "m"
        current, before = limit["recent_starts"]
        rate_now = "" if limit["rate"] is None else f"{current} this {unit}, {before} the last"
        rows.append(
            [
                name,
                _settings(limit),
                "paused" if limit["paused"] else "open",
                limit["holders"],
                limit["waiting"],
                rate_now,
            ]
        )
    print_table(["limit", "settings", "state", "holders", "waiting", "starts"], rows)
    return 0


def change_command(args: argparse.Namespace) -> int:
    with _opened(args) as (store, label):
        if args.change == "delete":
            found = store.delete_limit(args.name)
        else:
            found = store.pause_limit(args.name, args.change == "pause")
    if not found:
        raise LimitError(f"no limit {args.name!r} in {label}: 'cascade limits show' lists them", limit=args.name)
    done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[args.change]
    print(f"limit {args.name} {done} in {label}")
    return 0


def parse_resources(text: str | None) -> dict[str, float] | None:
    """``--resources gpu=2,memory_gb=32`` -> {"gpu": 2.0, "memory_gb": 32.0}; UsageError when malformed
    (the names and amounts are checked by the run, as those of ``run(resources=...)``)."""
    if text is None:
        return None
    totals: dict[str, float] = {}
    for item in text.split(","):
        name, sep, amount = item.partition("=")
        try:
            totals[name.strip()] = float(amount)
        except ValueError:
            sep = ""
        if not sep:
            raise UsageError(
                f"--resources {text!r}: write NAME=AMOUNT pairs separated by commas, such as gpu=2,memory_gb=32"
            )
    return totals
