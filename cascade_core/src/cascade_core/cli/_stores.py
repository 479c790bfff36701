"""Which stores a command opens: the default URIs, parsing them, and opening a run catalog."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._errors import BackendError, UsageError
from .._store.process import gone
from .._times import parse_time

STATE_ENV = "CASCADE_STATE"
CACHE_ENV = "CASCADE_CACHE"
EXECUTOR_ENV = "CASCADE_EXECUTOR"
DEFAULT_STORE = "sqlite:///.cascade.db"


def default_state() -> str:
    return os.environ.get(STATE_ENV) or DEFAULT_STORE


def default_cache() -> str:
    return os.environ.get(CACHE_ENV) or DEFAULT_STORE


def missing_file(uri: Any) -> bool:
    """A sqlite URI whose file does not exist (opening it would create it)."""
    if uri.scheme != "sqlite":
        return False
    import os

    from ..backends.sqlite import OPTIONS, path_from_uri

    uri.parse_options(OPTIONS)  # a bad option is reported as such, not as a missing file
    return not os.path.exists(path_from_uri(uri))


def parse_uri(uri_text: str) -> Any:
    from .._uri import BackendURI

    return BackendURI.parse(uri_text)


def open_catalog(uri: Any) -> Any:
    from .._plugins.registry import registry

    factory = registry.state_factory(uri)
    if not callable(getattr(factory, "list_runs", None)) or not callable(getattr(factory, "delete_run", None)):
        close(factory)
        raise BackendError(f"the state backend {uri} cannot list or delete runs (no RunCatalog capability)")
    return factory


def close(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        close()


def no_run(run_id: str, uri: Any) -> UsageError:
    return UsageError(f"no run {run_id!r} in {uri}: 'cascade runs list --state URI' shows the stored runs")


_NUMBERS = ("tasks", "results")  # and every count_* key


def shown_info(info: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Run info as the commands show it: numbers as integers; ``abandoned`` (since when, and why)
    for a ``running`` run whose run lease expired, or whose driver was a process of this machine
    that is gone."""
    shown = dict(info)
    for key, value in info.items():
        if key in _NUMBERS or key.startswith("count_"):
            try:
                shown[key] = int(value)
            except (TypeError, ValueError):
                pass
    if info.get("status") != "running":
        return shown
    expires = parse_time(info.get("lease_expires"))
    if expires is not None and expires <= now:
        shown.update(status="abandoned", abandoned_since=info["lease_expires"], abandoned_reason="run lease expired")
    elif info.get("driver_token") and gone(info["driver_token"]) is not None:
        # Its driver was a process of this machine that no longer runs: abandoned since its last heartbeat.
        since = info.get("updated") or info.get("driver_started") or "?"
        shown.update(status="abandoned", abandoned_since=since, abandoned_reason="driver process gone")
    return shown
