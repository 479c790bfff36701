"""A backend URI turned into typed connection and storage options.

``redis://[[user]:password@]host[:port][/db][?option=value&...]``, ``rediss://`` for TLS,
``redis+unix:///path/to/redis.sock?db=0``, and the Sentinel and Cluster forms of topology.py.
Every option is converted through one table; an unknown option or a bad value raises
InvalidURIError naming the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cascade_core.plugin import (
    MAX_SECONDS,
    MAX_TIMEOUT,
    BackendURI,
    InvalidURIError,
    SerializationError,
    at_most,
    boolean,
    choice,
    non_negative_int,
    positive_float,
    positive_int,
    size_bytes,
    timeout_seconds,
)

from .topology import DEFAULT_PORT, SCHEMES, STANDALONE, topology

DEFAULT_PREFIX: Final = "cascade"
DEFAULT_STATE_TTL: Final = 7 * 24 * 3600  # seconds: a week to resume a failed run
DEFAULT_MAX_VALUE_SIZE: Final = 256 * 1024 * 1024
# Redis refuses bulk strings over proto-max-bulk-len (512 MiB by default).
REDIS_MAX_VALUE_SIZE: Final = 512 * 1024 * 1024
DEFAULT_SOCKET_TIMEOUT: Final = 5.0
DEFAULT_SOCKET_CONNECT_TIMEOUT: Final = 2.0
DEFAULT_HEALTH_CHECK_INTERVAL: Final = 30
DEFAULT_RETRIES: Final = 3
DEFAULT_MIN_REPLICAS_TIMEOUT: Final = 1.0
MAX_DB: Final = 2**31 - 1  # redis's own bound for `databases`
MAX_RETRIES: Final = 100
MAX_REPLICAS: Final = 100


def _prefix(raw: str) -> str:
    if not raw:
        raise ValueError("expected a non-empty key prefix")
    if "{" in raw or "}" in raw:
        # Braces would change the hash tag that keeps a run's keys in one cluster slot.
        raise ValueError("a key prefix cannot contain '{' or '}'")
    return raw


TLS_OPTIONS: Final[dict[str, Callable[[str], Any]]] = {
    "ssl_cert_reqs": choice("required", "optional", "none"),
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_check_hostname": boolean,
}

OPTIONS: Final[dict[str, Callable[[str], Any]]] = {
    "db": at_most(non_negative_int, MAX_DB),
    "prefix": _prefix,
    "state_ttl": at_most(positive_int, MAX_SECONDS, " seconds (10 years)"),
    "ttl": positive_float,
    "serializer": choice("pickle", "json"),
    "max_value_size": size_bytes,
    "socket_timeout": timeout_seconds,
    "socket_connect_timeout": timeout_seconds,
    "health_check_interval": at_most(non_negative_int, MAX_TIMEOUT, " seconds (a day)"),
    "retries": at_most(non_negative_int, MAX_RETRIES),
    "min_replicas": at_most(non_negative_int, MAX_REPLICAS),
    "min_replicas_timeout": timeout_seconds,
    "sentinel_username": str,
    "sentinel_password": str,  # a secret: stays in the URI (masked), never in a field
    **TLS_OPTIONS,
}


@dataclass(frozen=True)
class RedisOptions:
    """Everything a URI says, typed. Holds no secret outside ``uri`` (whose repr masks them).

    >>> options = RedisOptions.from_uri("redis://localhost/2?prefix=ci&ttl=60")
    >>> options.db, options.prefix, options.ttl
    (2, 'ci', 60.0)
    """

    uri: BackendURI
    kind: str = STANDALONE  # standalone, sentinel or cluster (topology.py)
    nodes: tuple[tuple[str, int], ...] = ()  # the sentinels, or the cluster's seed nodes
    service: str | None = None  # the Sentinel service name
    sentinel_username: str | None = None
    host: str | None = "localhost"
    port: int | None = DEFAULT_PORT
    unix_socket_path: str | None = None
    db: int = 0
    tls: bool = False
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    prefix: str = DEFAULT_PREFIX
    state_ttl: int = DEFAULT_STATE_TTL
    ttl: float | None = None
    serializer: str = "pickle"
    max_value_size: int = DEFAULT_MAX_VALUE_SIZE
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    socket_connect_timeout: float = DEFAULT_SOCKET_CONNECT_TIMEOUT
    health_check_interval: int = DEFAULT_HEALTH_CHECK_INTERVAL
    retries: int = DEFAULT_RETRIES
    min_replicas: int = 0  # WAIT for this many replicas after every write
    min_replicas_timeout: float = DEFAULT_MIN_REPLICAS_TIMEOUT

    @classmethod
    def from_uri(cls, uri: BackendURI | str) -> RedisOptions:
        """Parse and check ``uri``; raise InvalidURIError naming the offending key."""
        if isinstance(uri, str):
            uri = BackendURI.parse(uri)
        if uri.scheme not in SCHEMES:
            raise InvalidURIError(
                f"{uri} is not a redis URI: use redis://, rediss://, redis+unix://, redis+sentinel:// or "
                "redis+cluster://",
                key="scheme",
            )
        options = uri.parse_options(OPTIONS)
        where = topology(uri, options)
        if not where.tls:
            for key in TLS_OPTIONS:
                if key in options:
                    secure = uri.scheme.replace("redis", "rediss", 1).replace("+unix", "")
                    raise InvalidURIError(
                        f"option {key!r} in {uri} only applies to TLS connections: use {secure}:// instead of "
                        f"{uri.scheme}://",
                        key=key,
                    )
        if options.get("max_value_size", 0) > REDIS_MAX_VALUE_SIZE:
            raise InvalidURIError(
                f"max_value_size in {uri} is over the 512M that redis accepts for one value: use 512M or less",
                key="max_value_size",
            )
        timeout = options.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
        if options.get("min_replicas") and options.get("min_replicas_timeout", DEFAULT_MIN_REPLICAS_TIMEOUT) >= timeout:
            raise InvalidURIError(
                f"min_replicas_timeout in {uri} must be shorter than socket_timeout ({timeout:g} s), which bounds "
                "the wait for the replicas: lower min_replicas_timeout or raise socket_timeout",
                key="min_replicas_timeout",
            )
        fields: dict[str, Any] = {
            key: value for key, value in options.items() if key not in ("db", "sentinel_password")
        }
        fields.update(kind=where.kind, nodes=where.nodes, service=where.service, db=where.db, tls=where.tls)
        if uri.scheme == "redis+unix":
            if uri.host:
                raise InvalidURIError(
                    f"{uri} names a host; a unix socket URI has none: redis+unix:///path/to/redis.sock",
                    key="host",
                )
            if not uri.path or uri.path == "/":
                raise InvalidURIError(
                    f"{uri} names no socket path: use redis+unix:///path/to/redis.sock?db=0", key="path"
                )
            fields.update(host=None, port=None, unix_socket_path=uri.path)
        elif where.kind == STANDALONE:
            fields.update(host=uri.host or "localhost", port=uri.port or DEFAULT_PORT)
        else:
            fields.update(host=None, port=None)
        return cls(uri=uri, **fields)

    @property
    def sentinel_password(self) -> str | None:
        """The ``sentinel_password`` option, read from the URI (which masks it in every repr)."""
        return self.uri.options.get("sentinel_password")

    def pool_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.ConnectionPool`` of one server (secrets included: never log them)."""
        from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection

        kwargs = self.node_kwargs()
        if self.unix_socket_path is not None:
            for key in [key for key in kwargs if key.startswith(("ssl", "socket_connect"))]:
                del kwargs[key]
            kwargs.update(connection_class=UnixDomainSocketConnection, path=self.unix_socket_path)
            return kwargs
        kwargs.pop("ssl", None)
        kwargs.update(connection_class=SSLConnection if self.tls else Connection, host=self.host, port=self.port)
        return kwargs

    def node_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments for any data node (a server, a cluster node, a Sentinel-managed
        master): everything but the address. Secrets included: never log them."""
        kwargs = self.socket_kwargs(self.uri.username, self.uri.password)
        return {"db": self.db, "health_check_interval": self.health_check_interval, **kwargs}

    def socket_kwargs(self, username: str | None, password: str | None) -> dict[str, Any]:
        """What every connection of this URI takes, data node or sentinel: credentials, timeouts, TLS."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        kwargs: dict[str, Any] = {
            "username": username,
            "password": password,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            # RedisConnection.run retries the whole call itself (redis-py would also retry a
            # refused password, and its default is 10 attempts): no retry inside redis-py.
            "retry": Retry(NoBackoff(), 0),
        }
        if self.tls:
            kwargs.update(self.tls_kwargs(), ssl=True)
        return kwargs

    def tls_kwargs(self) -> dict[str, Any]:
        return {
            "ssl_cert_reqs": self.ssl_cert_reqs,
            "ssl_ca_certs": self.ssl_ca_certs,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            # Checking the host name needs a verified certificate.
            "ssl_check_hostname": self.ssl_check_hostname and self.ssl_cert_reqs != "none",
        }

    def check_sizes(self, items: Mapping[str, bytes], what: str) -> None:
        """Raise SerializationError, before anything is written, when a value is over max_value_size.

        ``what`` names a value, with ``{key}`` where its key goes.
        """
        limit = self.max_value_size
        for key, value in items.items():
            if len(value) > limit:
                name = what.replace("{key}", repr(key))
                raise SerializationError(
                    f"{name} is {len(value)} bytes, over the max_value_size of {limit} bytes for {self.uri}: "
                    "store something smaller, or raise max_value_size in the URI (redis takes at most 512M)"
                )

    def __repr__(self) -> str:
        return f"RedisOptions({str(self.uri)!r}, db={self.db}, prefix={self.prefix!r})"
