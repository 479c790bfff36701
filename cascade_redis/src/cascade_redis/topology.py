"""Which redis deployment a URI names: one server, a Sentinel-managed master, or a Redis Cluster.

::

    redis://h:6379/0, rediss://..., redis+unix:///path.sock      one server
    redis+sentinel://[user:password@]h1:26379,h2:26379/SERVICE[/DB]   the master of SERVICE,
    rediss+sentinel://...                                          found through the sentinels
    redis+cluster://h1:7000,h2:7001, rediss+cluster://...          a cluster; any node is a seed

Every check here raises a one-line InvalidURIError naming the URI with its secrets masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from cascade_core.plugin import BackendURI, InvalidURIError

STANDALONE: Final = "standalone"
SENTINEL: Final = "sentinel"
CLUSTER: Final = "cluster"

# scheme -> (deployment kind, TLS)
SCHEMES: Final[dict[str, tuple[str, bool]]] = {
    "redis": (STANDALONE, False),
    "rediss": (STANDALONE, True),
    "redis+unix": (STANDALONE, False),
    "redis+sentinel": (SENTINEL, False),
    "rediss+sentinel": (SENTINEL, True),
    "redis+cluster": (CLUSTER, False),
    "rediss+cluster": (CLUSTER, True),
}

DEFAULT_PORT: Final = 6379
DEFAULT_SENTINEL_PORT: Final = 26379
SENTINEL_OPTIONS: Final = ("sentinel_username", "sentinel_password")

SENTINEL_FORM: Final = "redis+sentinel://[user:password@]h1:26379,h2:26379/SERVICE[/DB]"
CLUSTER_FORM: Final = "redis+cluster://h1:7000,h2:7001"


@dataclass(frozen=True)
class Topology:
    """The deployment a URI names: its kind, its hosts (sentinels or seeds), a service and a db."""

    kind: str
    tls: bool
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0


def topology(uri: BackendURI, options: dict[str, Any]) -> Topology:
    """The deployment ``uri`` names; ``options`` are its parsed query options."""
    kind, tls = SCHEMES[uri.scheme]
    for key in SENTINEL_OPTIONS:
        if key in options and kind != SENTINEL:
            raise InvalidURIError(f"option {key!r} in {uri} only applies to Sentinel: use {SENTINEL_FORM}", key=key)
    hosts = uri.hosts
    if kind == STANDALONE:
        if len(hosts) > 1:
            raise InvalidURIError(
                f"{uri} lists several hosts: use {CLUSTER_FORM} for a Redis Cluster or {SENTINEL_FORM} for Sentinel",
                key="host",
            )
        return Topology(kind, tls, db=database(uri, options.get("db")))
    if not any(host for host, _ in hosts):
        form = SENTINEL_FORM if kind == SENTINEL else CLUSTER_FORM
        raise InvalidURIError(f"{uri} names no host: use {form}", key="host")
    default_port = DEFAULT_SENTINEL_PORT if kind == SENTINEL else DEFAULT_PORT
    nodes = tuple(dict.fromkeys((host or "localhost", port or default_port) for host, port in hosts))
    if kind == CLUSTER:
        return Topology(kind, tls, nodes, db=_cluster_db(uri, options.get("db")))
    service, db = _service_and_db(uri, options.get("db"))
    return Topology(kind, tls, nodes, service, db)


def _cluster_db(uri: BackendURI, query_db: int | None) -> int:
    text = uri.database.strip("/")
    if text and not text.isdigit():
        raise InvalidURIError(
            f"{uri} names a path {text!r}, but a cluster URI has none (a service name belongs in {SENTINEL_FORM})",
            key="db",
        )
    for db in (int(text) if text else 0, query_db or 0):
        if db != 0:
            raise InvalidURIError(
                f"{uri} names db {db}, but a Redis Cluster has only db 0: drop the db from the URI", key="db"
            )
    return 0


def _service_and_db(uri: BackendURI, query_db: int | None) -> tuple[str, int]:
    parts = uri.database.strip("/").split("/") if uri.database.strip("/") else []
    if not parts or not parts[0]:
        raise InvalidURIError(f"{uri} names no Sentinel service: use {SENTINEL_FORM}", key="service")
    if len(parts) > 2:
        raise InvalidURIError(f"{uri} has more than /SERVICE/DB in its path: use {SENTINEL_FORM}", key="db")
    if parts[0].isdigit():
        raise InvalidURIError(
            f"{uri} names db {parts[0]} where the Sentinel service name goes: use {SENTINEL_FORM}", key="service"
        )
    return parts[0], _agreeing_db(uri, parts[1] if len(parts) == 2 else "", query_db)


def database(uri: BackendURI, query_db: int | None) -> int:
    """The db of a one-server URI, from ``?db=`` or (for TCP URIs) the path; both must agree."""
    if uri.scheme == "redis+unix":
        return query_db or 0
    return _agreeing_db(uri, uri.database.strip("/"), query_db)


def _agreeing_db(uri: BackendURI, text: str, query_db: int | None) -> int:
    if not text:
        return query_db or 0
    if not text.isdigit():
        raise InvalidURIError(f"invalid database {text!r} in {uri}: the path must be a db number such as /0", key="db")
    path_db = int(text)
    if query_db is not None and query_db != path_db:
        raise InvalidURIError(
            f"{uri} names db {path_db} in its path and db {query_db} in its query: keep one", key="db"
        )
    return path_db
