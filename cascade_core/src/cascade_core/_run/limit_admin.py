"""Setting, reading, pausing and deleting named limits: ``cs.set_limit`` and ``cascade limits``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .._errors import LimitError
from .._plugins.resolve import resolve_state
from .._store.limits import LimitStore, checked_settings, limit_store_of


@contextlib.contextmanager
def opened_limits(state_backend: Any) -> Iterator[tuple[LimitStore, str]]:
    """The LimitStore of ``state_backend`` (a URI, a factory or a backend) and its label; closed
    after when opened here. LimitError when the backend keeps no limits."""
    spec = resolve_state(state_backend)
    try:
        store = limit_store_of(spec.factory, spec.instance)
        if store is None:
            raise LimitError(
                f"the state backend {spec.label} keeps no limits: use one that does (memory://, sqlite://, redis://)"
            )
        yield store, spec.label
    finally:
        spec.close()


def set_limit(
    state_backend: Any, name: str, *, concurrency: int | None = None, rate: str | None = None, burst: int | None = None
) -> None:
    """Create or replace the named limit ``name`` in ``state_backend``, for every run using it.

    >>> cs.set_limit("redis://host:6379/0", "openai", concurrency=5, rate="10/s")  # doctest: +SKIP

    ``concurrency``: at most this many tasks naming the limit run at once; ``rate``: at most
    ``"N/s"`` or ``"N/m"`` of them start, with ``burst`` (default 1) at once. Both may be given;
    what is not given is unset. Pausing and running tasks are kept.
    """
    settings = checked_settings(name, concurrency, rate, burst)
    with opened_limits(state_backend) as (store, _):
        store.set_limit(name, settings.concurrency, settings.rate, settings.per, settings.burst)
