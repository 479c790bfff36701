"""``cascade blobs du`` and ``cascade blobs gc``, and the blob-store check of ``cascade backends check``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .._blobs import BLOBS_ENV
from .._errors import UsageError
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
    gc.add_argument(
        "--state", default=None, metavar="URI", help=f"state backend URI (default: ${STATE_ENV} or {DEFAULT_STORE})"
    )
    gc.add_argument(
        "--cache", default=None, metavar="URI", help=f"cache backend URI (default: ${CACHE_ENV} or {DEFAULT_STORE})"
    )
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    gc.add_argument(
        "--older-than",
        default="24h",
        metavar="AGE",
        help="keep blobs written within AGE, for runs still writing (90s, 30m, 24h, 7d; default 24h)",
    )
    du.set_defaults(handler=du_command)
    gc.set_defaults(handler=gc_command)


def _store(args: argparse.Namespace) -> tuple[Any, str]:
    from .._blobs import resolve_blobs

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


def gc_command(args: argparse.Namespace) -> int:
    from .._blob_gc import cache_references, collect, parse_duration, state_references
    from .._registry import registry
    from ._stores import close, open_catalog, parse_uri

    try:
        older_than = parse_duration(args.older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    store, label = _store(args)
    state_uri = parse_uri(args.state or default_state())
    cache_uri = parse_uri(args.cache or default_cache())
    catalog = open_catalog(state_uri)
    try:
        cache = registry.cache_backend(cache_uri)
        try:
            live = state_references(catalog) | cache_references(cache, str(cache_uri))  # before listing blobs
        finally:
            cache.close()
    finally:
        close(catalog)
    report = collect(store, live, older_than, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
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

    from .._blobs import resolve_blobs
    from .._errors import BackendError

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
    return f"{type(store).__name__}, blobs over {spec.threshold} bytes stored by reference"
