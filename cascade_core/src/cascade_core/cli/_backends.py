"""``cascade backends``: list installed backend and executor plugins, validate them, check a URI end to end."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .._errors import CascadeError, InvalidURIError
from ._exit import EXIT_FAILED, EXIT_OK
from ._output import print_json, print_table


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "backends",
        help="list installed backend and executor plugins",
        description="List installed backend and executor plugins (imports none unless --check).",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.add_argument("--check", action="store_true", help="import and validate every provider")
    parser.set_defaults(handler=list_backends)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    check = sub.add_parser(
        "check", help="open a backend and do a write/read/delete round trip, or run a trivial task on an executor"
    )
    check.add_argument("uri", help="a backend or executor URI such as sqlite:///cascade.db or threads://")
    check.add_argument("--json", action="store_true", dest="check_json", help="print a JSON object")
    check.set_defaults(handler=check_uri)


def _rows(validate: bool) -> list[dict[str, Any]]:
    from .._plugins.registry import registry

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

    from .._plugins.registry import registry
    from .._uri import BackendURI

    uri = BackendURI.parse(args.uri)
    loaded = registry.load(uri.scheme)
    report: dict[str, Any] = {"uri": str(uri), "distribution": loaded.entry.distribution, "checks": []}
    probe = b"cascade-check-" + os.urandom(8).hex().encode()
    ok = True
    for kind in loaded.provides:
        started = time.perf_counter()
        try:
            detail = _round_trip(kind, uri, probe)
            seconds = round(time.perf_counter() - started, 6)
            result = {"backend": kind, "ok": True, "seconds": seconds, "error": None, "detail": detail}
        except InvalidURIError:
            raise  # bad input (exit 2), not a failed check: the URI is wrong whatever the server does
        except CascadeError as exc:
            ok = False
            result = {
                "backend": kind,
                "ok": False,
                "seconds": round(time.perf_counter() - started, 6),
                "error": str(exc),
                "detail": None,
            }
        report["checks"].append(result)
    report["ok"] = ok
    if args.check_json:
        print_json(report)
    else:
        for result in report["checks"]:
            outcome = "ok" if result["ok"] else f"FAILED: {result['error']}"
            found = f": {result['detail']}" if result["detail"] else ""
            print(f"{report['uri']} {result['backend']}: {outcome} ({result['seconds'] * 1000:.1f} ms){found}")
    return EXIT_OK if ok else EXIT_FAILED


def _round_trip(kind: str, uri: Any, probe: bytes) -> str | None:
    """Check one capability of ``uri``; return what was found, when there is more to say than ok."""
    from .._errors import BackendError
    from .._plugins.registry import registry

    if kind == "executor":
        return _run_probe(uri, probe.decode())
    if kind == "blobs":
        from ._blobs import check_blob_store

        return check_blob_store(uri, probe)
    found = _existing_file(uri)
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
            return found or _describe(factory)
        finally:
            backend.close()
            if hasattr(factory, "close"):
                factory.close()
    cache = registry.cache_backend(uri)
    try:
        key = "cascade-check:" + probe.decode()[-16:]
        cache.set_many({key: probe}, 60)
        if cache.get_many([key]).get(key) != probe:
            raise BackendError(f"cache backend of {uri} returned something else than what was written")
        cache.delete_many([key])
        return found or _describe(cache)
    finally:
        cache.close()


def _existing_file(uri: Any) -> str | None:
    """A check creates nothing: a ``sqlite://`` file must exist, and be a Cascade database,
    before the probe is written to it (read-only until then). Says which file it found."""
    if uri.scheme != "sqlite":
        return None
    from ..backends.sqlite import inspect_file

    return inspect_file(uri)


def _describe(backend: Any) -> str | None:
    """What a backend says it reached (its optional ``describe()``: a server, a cluster's masters)."""
    describe = getattr(backend, "describe", None)
    if not callable(describe):
        return None
    text = describe()
    return text if isinstance(text, str) and text else None


CHECK_TIMEOUT = 30.0  # seconds an executor gets to run the probe task (a remote cluster may be slow to start)


def _probe(text: str) -> tuple[str, int]:
    """The task ``check`` runs on an executor: module-level, so a worker in another process imports it."""
    import os

    return text, os.getpid()


def _run_probe(uri: Any, text: str) -> str:
    """Submit one task call to the executor of ``uri``, wait for its outcome and check it."""
    import os
    import pickle
    import threading

    from .._build.task import Task
    from .._errors import BackendUnavailableError, PluginError
    from .._plugins.call import Outcome, TaskCall
    from .._plugins.registry import registry

    executor = registry.executor(uri)
    try:
        outcomes: list[Outcome] = []
        finished = threading.Event()

        def done(outcome: Outcome) -> None:
            outcomes.append(outcome)
            finished.set()

        call = TaskCall(0, "cascade-check", Task(_probe, name="cascade.check"), (text,), {})
        try:
            handle = executor.submit(call, done)
        except Exception as exc:  # the contract says never raise for a task: a plugin bug, reported as a failed check
            raise PluginError(
                f"executor {uri} raised from submit(): {type(exc).__name__}: {exc}".splitlines()[0], scheme=uri.scheme
            ) from exc
        if not finished.wait(CHECK_TIMEOUT):
            handle.cancel()
            raise BackendUnavailableError(f"executor {uri} did not run a trivial task within {CHECK_TIMEOUT:g} s")
        outcome = outcomes[0]
        if not outcome.ok:
            error = outcome.value
            raise PluginError(
                f"executor {uri} failed a trivial task: {type(error).__name__}: {error}".splitlines()[0],
                scheme=uri.scheme,
            )
        value = pickle.loads(outcome.body) if outcome.body is not None else None
        if outcome.index != 0 or not isinstance(value, tuple) or value[0] != text:
            raise PluginError(f"executor {uri} returned something else than the task's result", scheme=uri.scheme)
        where = "the driver's process" if value[1] == os.getpid() else f"process {value[1]}"
        return f"{executor!r}, {executor.max_workers} at once, ran a task in {where}"
    finally:
        executor.close()
