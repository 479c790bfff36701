"""One redis connection pool per backend URI, and redis errors translated into Cascade's.

A state factory or a cache backend owns one ``RedisConnection``; the state backends a
factory makes share its pool. ``close()`` disconnects the pool; a later call reconnects.

redis-py's own ``ConnectionPool`` repr shows the password (redis-py #3993), so the pool
and client stay private here and everything we print goes through ``str(uri)``, which masks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NoReturn, TypeVar

from cascade_core._errors import BackendError, BackendUnavailableError
from cascade_core._uri import mask_text

from .options import RedisOptions

if TYPE_CHECKING:
    import redis

T = TypeVar("T")


BACKOFF_BASE: Final = 0.05
BACKOFF_CAP: Final = 1.0


def _retryable(exc: Exception) -> bool:
    import redis.exceptions as rex

    return isinstance(exc, (rex.ConnectionError, rex.TimeoutError)) and not isinstance(exc, rex.AuthenticationError)


class RedisConnection:
    """A lazily created pool and client for one URI, with error translation."""

    __slots__ = ("options", "_client", "_lock")

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> redis.Redis:
        """The shared client; creating it opens no socket (the first command connects)."""
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    import redis

                    pool = redis.ConnectionPool(**self.options.pool_kwargs())
                    client = self._client = redis.Redis(connection_pool=pool)
        return client

    def run(self, action: Callable[[redis.Redis], T]) -> T:
        """Call ``action(client)``; redis errors become Cascade errors naming the masked URI.

        A lost connection or a timeout is retried ``retries`` times, after 0.05 s, 0.1 s,
        0.2 s, ... (at most 1 s): every action here is idempotent (HSET, EXPIRE, SET, DEL),
        so running a pipeline twice stores the same thing. A refused password is not retried.
        """
        failures = 0
        while True:
            try:
                return action(self.client)
            except Exception as exc:
                if failures >= self.options.retries or not _retryable(exc):
                    self.translate(exc)
                failures += 1
                time.sleep(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1)))

    def translate(self, exc: Exception) -> NoReturn:
        """Re-raise ``exc`` as a Cascade error when it came from redis; as is otherwise."""
        import redis.exceptions as rex

        uri = self.options.uri
        reason = mask_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, uri)
        if isinstance(exc, rex.AuthenticationError) or (
            isinstance(exc, rex.ResponseError) and str(exc).startswith(("NOAUTH", "WRONGPASS"))
        ):
            raise BackendUnavailableError(
                f"redis at {uri} refused the credentials ({reason}): check the user name and password in the URI"
            ) from exc
        if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
            raise BackendUnavailableError(
                f"redis at {uri} is unavailable after {self.options.retries} retries ({type(exc).__name__}: {reason}): "
                "is redis-server running? check host/port"
            ) from exc
        if isinstance(exc, rex.RedisError):
            raise BackendError(f"redis at {uri} refused a command: {reason}") from exc
        raise exc

    def close(self) -> None:
        """Disconnect every pooled connection. Calling it twice is harmless."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.connection_pool.disconnect()

    def __repr__(self) -> str:
        return f"RedisConnection({str(self.options.uri)!r})"
