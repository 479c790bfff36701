"""``cascade backends``: list installed backend plugins, validate them, check a URI end to end."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .._errors import CascadeError, InvalidURIError
from ._main import EXIT_FAILED, EXIT_OK
from ._output import print_json, print_table


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "backends",
        help="list installed backend plugins",
        description="List installed backend plugins (imports none unless --check).",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.add_argument("--check", action="store_true", help="import and validate every provider")
    parser.set_defaults(handler=list_backends)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    check = sub.add_parser("check", help="open a backend and do a write/read/delete round trip")
    check.add_argument("uri", help="a backend URI such as sqlite:///cascade.db")
    check.add_argument("--json", action="store_true", dest="check_json", help="print a JSON object")
    check.set_defaults(handler=check_uri)


def _rows(validate: bool) -> list[dict[str, Any]]:
    from .._registry import registry

    rows = []
    for entry, shadowed in registry.entries():
        provides: list[str] = list(entry.provides_hint)
        status, error = "available", None
        if shadowed:
            status = "conflict: also claimed by " + ", ".join(other.distribution for other in shadowed)
        if validate:
            try:
                provides = list(registry.load(entry.scheme).provides)
                status = "ok" if not shadowed else status
            except CascadeError as exc:
                status, error = "error", str(exc)
        rows.append(
            {
                "scheme": entry.scheme,
                "distribution": entry.distribution,
                "version": entry.version,
                "target": entry.target,
                "provides": provides,
                "status": status,
                "error": error,
            }
        )
    return rows


def list_backends(args: argparse.Namespace) -> int:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # conflicts are reported in the status column instead
        rows = _rows(args.check)
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["scheme", "distribution", "version", "target", "provides", "status"],
            [
                [r["scheme"], r["distribution"], r["version"], r["target"], ",".join(r["provides"]) or "?", r["status"]]
                for r in rows
            ],
        )
        for row in rows:
            if row["error"]:
                print(f"{row['scheme']}: {row['error']}")
    return EXIT_FAILED if any(row["status"] == "error" for row in rows) else EXIT_OK


def check_uri(args: argparse.Namespace) -> int:
    """Resolve a URI, then write, read and delete through each backend it provides."""
    import os

    from .._registry import registry
    from .._uri import BackendURI

    uri = BackendURI.parse(args.uri)
    loaded = registry.load(uri.scheme)
    report: dict[str, Any] = {"uri": str(uri), "distribution": loaded.entry.distribution, "checks": []}
    probe = b"cascade-check-" + os.urandom(8).hex().encode()
    ok = True
    for kind in loaded.provides:
        started = time.perf_counter()
        try:
            _round_trip(kind, uri, probe)
            result = {"backend": kind, "ok": True, "seconds": round(time.perf_counter() - started, 6), "error": None}
        except InvalidURIError:
            raise  # bad input (exit 2), not a failed check: the URI is wrong whatever the server does
        except CascadeError as exc:
            ok = False
            result = {
                "backend": kind,
                "ok": False,
                "seconds": round(time.perf_counter() - started, 6),
                "error": str(exc),
            }
        report["checks"].append(result)
    report["ok"] = ok
    if args.check_json:
        print_json(report)
    else:
        for result in report["checks"]:
            outcome = "ok" if result["ok"] else f"FAILED: {result['error']}"
            print(f"{report['uri']} {result['backend']}: {outcome} ({result['seconds'] * 1000:.1f} ms)")
    return EXIT_OK if ok else EXIT_FAILED


def _round_trip(kind: str, uri: Any, probe: bytes) -> None:
    from .._errors import BackendError
    from .._registry import registry

    if kind == "state":
        factory = registry.state_factory(uri)
        run_id = "cascade-check-" + probe.decode()[-16:]
        backend = factory(run_id)
        try:
            backend.put_results({"probe": probe})
            if backend.get_results(["probe"]).get("probe") != probe:
                raise BackendError(f"state backend of {uri} returned something else than what was written")
            if hasattr(factory, "delete_run"):
                factory.delete_run(run_id)
        finally:
            backend.close()
            if hasattr(factory, "close"):
                factory.close()
        return
    cache = registry.cache_backend(uri)
    try:
        key = "cascade-check:" + probe.decode()[-16:]
        cache.set_many({key: probe}, 60)
        if cache.get_many([key]).get(key) != probe:
            raise BackendError(f"cache backend of {uri} returned something else than what was written")
        cache.delete_many([key])
    finally:
        cache.close()
