"""Who claims which URI scheme: the ``cascade.backends`` entry points, read from metadata only.

Nothing here imports a provider. A scheme claimed by several distributions resolves by, in
order: the ``CASCADE_BACKEND_PREFER`` setting (``scheme=distribution,...``), cascade-core
itself, then the distribution whose name sorts first (a runtime ``register_backend()``
beats them all, in ``_registry``).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from .._errors import InvalidURIError
from .._uri import normalize_scheme
from .hookspecs import KINDS

GROUP = "cascade.backends"
CORE_DISTRIBUTION = "cascade-core"
PREFER_ENV = "CASCADE_BACKEND_PREFER"

_EXTRAS_RE = re.compile(r"\[(?P<extras>[^\]]*)\]\s*$")


class BackendConflictWarning(UserWarning):
    """Two installed distributions claim the same URI scheme."""


@dataclass(frozen=True)
class BackendEntry:
    """One claim on a scheme: installed (read from metadata, nothing imported) or runtime.

    ``provides_hint``: what the entry point's bracket says it offers (``state``, ``cache``,
    ``executor``); empty when it says nothing.
    """

    scheme: str
    distribution: str
    version: str
    target: str
    provides_hint: tuple[str, ...] = ()
    runtime: bool = False


@dataclass
class Claims:
    """The entry chosen for a scheme and the ones it shadows."""

    chosen: BackendEntry
    others: list[BackendEntry] = field(default_factory=list)


def normalize_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_entry_points() -> list[BackendEntry]:
    """Every installed ``cascade.backends`` entry point (the same distribution seen twice counts once)."""
    from importlib.metadata import distributions

    found: dict[tuple[str, str], BackendEntry] = {}
    for dist in distributions():
        entry_points = [ep for ep in dist.entry_points if ep.group == GROUP]
        if not entry_points:
            continue
        dist_name = normalize_dist(dist.metadata["Name"] or "unknown")
        for ep in entry_points:
            try:
                scheme = normalize_scheme(ep.name)
            except InvalidURIError:
                warnings.warn(
                    f"{dist_name} declares an invalid cascade.backends scheme {ep.name!r}; ignored",
                    BackendConflictWarning,
                    stacklevel=2,
                )
                continue
            value = ep.value
            hint: tuple[str, ...] = ()
            extras = _EXTRAS_RE.search(value)
            if extras:
                value = value[: extras.start()].strip()
                words = {x.strip() for x in extras["extras"].split(",")}
                hint = tuple(kind for kind in KINDS if kind in words)
            found.setdefault((scheme, dist_name), BackendEntry(scheme, dist_name, dist.version or "", value, hint))
    return list(found.values())


def preferences() -> dict[str, str]:
    """``CASCADE_BACKEND_PREFER`` as scheme -> normalized distribution name."""
    prefer: dict[str, str] = {}
    for item in os.environ.get(PREFER_ENV, "").split(","):
        scheme, eq, dist = item.partition("=")
        if eq and scheme.strip() and dist.strip():
            prefer[scheme.strip().lower()] = normalize_dist(dist.strip())
    return prefer


def resolve_claims(entries: list[BackendEntry]) -> dict[str, Claims]:
    """Group entries by scheme and choose one per scheme (see the module docstring)."""
    by_scheme: dict[str, list[BackendEntry]] = {}
    for entry in entries:
        by_scheme.setdefault(entry.scheme, []).append(entry)
    prefer = preferences()
    claims = {}
    for scheme, candidates in by_scheme.items():
        wanted = prefer.get(scheme)

        def rank(entry: BackendEntry, wanted: str | None = wanted) -> tuple[int, int, str]:
            return (entry.distribution != wanted, entry.distribution != CORE_DISTRIBUTION, entry.distribution)

        ordered = sorted(candidates, key=rank)
        claims[scheme] = Claims(ordered[0], ordered[1:])
    return claims


def import_target(target: str) -> Any:
    """The object an entry point names (``module:attr.attr``)."""
    import importlib

    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj
