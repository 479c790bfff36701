"""``cascade blobs du`` and ``cascade blobs gc``, and the blob-store check of ``cascade backends check``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .._errors import UsageError
from .._masking import MASK
from .._store.blob_refs import BLOBS_ENV
from ._exit import EXIT_OK
from ._output import print_json
from ._stores import CACHE_ENV, DEFAULT_STORE, STATE_ENV, default_cache, default_state


def add_parser(commands: Any) -> None:
    blobs = commands.add_parser("blobs", help="size and garbage-collect the blob store (docs/blobs.md)")
    sub = blobs.add_subparsers(dest="blobs_command", metavar="COMMAND", parser_class=type(blobs))
    sub.required = True
    du = sub.add_parser("du", help="how many blobs, and how many bytes, the blob store holds")
    gc = sub.add_parser("gc", help="delete blobs that no stored result or cache entry references (never recent ones)")
    for parser in (du, gc):
        parser.add_argument("--blobs", default=None, metavar="URI", help=f"blob store URI (default: ${BLOBS_ENV})")
        parser.add_argument("--json", action="store_true", help="print a JSON object")
    for role, env in (("state", STATE_ENV), ("cache", CACHE_ENV)):
        gc.add_argument(
            f"--{role}",
            action="append",
            default=None,
            metavar="URI",
            help=f"a {role} backend URI that references blobs; repeat for each, 'none' for no {role} "
            f"(default: ${env} or {DEFAULT_STORE}; it must exist)",
        )
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    gc.add_argument(
        "--force",
        action="store_true",
        help="go on although the blob store records writers not given as --state/--cache (says what it deletes first)",
    )
    gc.add_argument(
        "--older-than",
        default="24h",
        metavar="AGE",
        help="keep blobs written within AGE, for runs still writing (90s, 30m, 24h, 7d; default 24h)",
    )
    du.set_defaults(handler=du_command)
    gc.set_defaults(handler=gc_command)


def _store(args: argparse.Namespace) -> tuple[Any, str]:
    from .._store.blob_refs import resolve_blobs

    text = args.blobs or os.environ.get(BLOBS_ENV)
    if not text:
        raise UsageError(f"no blob store: pass --blobs URI or set ${BLOBS_ENV}")
    spec = resolve_blobs(text)
    assert spec is not None
    return spec.store, spec.label


def du_command(args: argparse.Namespace) -> int:
    store, label = _store(args)
    count = size = 0
    for info in store.list_blobs():
        count += 1
        size += info.size
    if args.json:
        print_json({"blobs": label, "count": count, "bytes": size})
    else:
        print(f"{label}: {count} blobs, {size} bytes ({size / 2**20:.1f} MiB)")
    return EXIT_OK


def _given(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(role, URI) of every store gc reads references from; each must exist (gc creates nothing)."""
    from .._store.blob_writers import writer
    from ._stores import missing_file, parse_uri

    given = []
    for role, texts, default in (("state", args.state, default_state()), ("cache", args.cache, default_cache())):
        for text in texts or [default]:
            if text.strip().lower() == "none":
                continue
            uri = parse_uri(text)
            if uri.scheme == "memory":
                raise UsageError(
                    f"--{role} {uri}: a memory:// store lives in the process that ran, so gc cannot read it: "
                    f"pass the {role} store the runs used, or --{role} none"
                )
            if missing_file(uri):
                path = writer(role, uri).uri[len("sqlite:///") :]  # type: ignore[union-attr]
                raise UsageError(
                    f"--{role} {uri}: {path} does not exist, and gc opens only stores that exist: "
                    f"check the path (or pass --{role} none)"
                )
            if uri.scheme == "sqlite":  # read-only first: gc must not create its tables in another program's file
                from .._errors import BackendUnavailableError
                from ..backends.sqlite import inspect_file

                try:
                    inspect_file(uri, "gc", "reads references only from")
                except BackendUnavailableError as exc:
                    raise UsageError(f"--{role} {uri}: {exc}") from None
            given.append((role, uri))
    return given


def _checked_writers(store: Any, label: str, given: list[tuple[str, Any]], force: bool) -> list[Any]:
    """The recorded writers of the blob store that gc was not given; a UsageError unless ``force``."""
    from .._store.blob_writers import recorded, writer

    found = recorded(store)
    if found is None:
        if not force:
            raise UsageError(
                f"blob store {label} does not record which stores write references into it, so gc cannot check "
                "--state/--cache: pass --force to delete what the given stores do not reference"
            )
        return []
    names = {w.name for w in (writer(role, uri) for role, uri in given) if w is not None}
    unknown = [w for name, w in sorted(found.items()) if name not in names]
    if unknown and not force:
        options = " ".join(f"--{w.role} {w.uri}" for w in unknown)
        secret = " (with the masked secrets)" if MASK in options else ""
        raise UsageError(
            f"blob store {label} holds references written by {', '.join(map(str, unknown))}, which gc was not "
            f"given: add {options}{secret}, or --force to delete what the given stores do not reference"
        )
    return unknown


def gc_command(args: argparse.Namespace) -> int:
    from .._plugins.registry import registry
    from .._store.blob_gc import cache_references, parse_duration, plan, remove, state_references
    from .._store.blob_writers import forget, supports_markers
    from ._stores import close, open_catalog

    try:
        older_than = parse_duration(args.older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    store, label = _store(args)
    given = _given(args)
    unknown = _checked_writers(store, label, given, args.force)
    live: set[str] = set()
    for role, uri in given:  # every reference, before listing blobs
        if role == "state":
            catalog = open_catalog(uri)
            try:
                live |= state_references(catalog)
            finally:
                close(catalog)
        else:
            cache = registry.cache_backend(uri)
            try:
                live |= cache_references(cache, str(uri))
            finally:
                cache.close()
    report = plan(store, live, older_than)
    verb = "would delete" if args.dry_run else "deleted"
    forced = args.force and (unknown or not supports_markers(store))
    if forced:
        not_given = ", ".join(map(str, unknown)) or "any store it was not given (the store records none)"
        print(
            f"warning: --force: gc cannot see the references of {not_given}; it "
            f"{'would delete' if args.dry_run else 'deletes'} {len(report.deleted)} blobs "
            f"({report.deleted_bytes} bytes) that the given stores do not reference",
            file=sys.stderr,
        )
        for blob_id in report.deleted:
            print(f"{'would delete' if args.dry_run else 'will delete'} {blob_id}", file=sys.stderr)
    if not args.dry_run:
        remove(store, report)
        if unknown:
            forget(store, [w.name for w in unknown])  # told to: the next gc asks only for the given stores
    if args.json:
        print_json(
            {
                "blobs": label,
                "dry_run": args.dry_run,
                "count": report.blobs,
                "bytes": report.bytes,
                "referenced": report.referenced,
                "recent": report.recent,
                "deleted": report.deleted,
                "deleted_bytes": report.deleted_bytes,
                "temporary": report.temporary,
                "temporary_deleted": report.temporary_deleted,
                "temporary_deleted_bytes": report.temporary_deleted_bytes,
                "not_given": [str(w) for w in unknown],
            }
        )
    else:
        for blob_id in report.deleted:
            print(f"{verb} {blob_id}")
        for name in report.temporary_deleted:
            print(f"{verb} temporary file {name}")
        stale = len(report.temporary_deleted)
        temporary = f"; {verb} {stale} stale temporary files ({report.temporary_deleted_bytes} bytes)" if stale else ""
        print(
            f"{label}: {report.blobs} blobs, {report.referenced} referenced, {report.recent} recent (kept); "
            f"{verb} {len(report.deleted)} ({report.deleted_bytes} bytes){temporary}"
        )
    return EXIT_OK


def check_blob_store(uri: Any, probe: bytes) -> str | None:
    """Write, read back, verify and delete one blob (``cascade backends check``)."""
    import hashlib

    from .._errors import BackendError
    from .._store.blob_refs import resolve_blobs

    spec = resolve_blobs(uri)
    assert spec is not None
    store = spec.store
    blob_id = "sha256:" + hashlib.sha256(probe).hexdigest()
    store.put(blob_id, probe)
    if store.get(blob_id) != probe or not store.exists(blob_id):
        raise BackendError(f"blob store {spec.label} returned something else than what was written")
    store.delete(blob_id)
    if store.exists(blob_id):
        raise BackendError(f"blob store {spec.label} did not delete a blob")
    described = getattr(store, "describe", None)  # optional: what the store reached (an IPFS node's version)
    found = described() if callable(described) else None
    reached = f"{found}; " if isinstance(found, str) and found else ""
    return f"{reached}{type(store).__name__}, blobs over {spec.threshold} bytes stored by reference"
