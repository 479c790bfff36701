"""One redis connection pool per backend URI, and redis errors translated into Cascade's.

A state factory or a cache backend owns one ``RedisConnection``; the state backends a
factory makes share its pool. ``close()`` disconnects the pool; a later call reconnects.

redis-py's own ``ConnectionPool`` repr shows the password (redis-py #3993), so the pool
and client stay private here and everything we print goes through ``str(uri)``, which masks.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NoReturn, TypeVar

from cascade_core.plugin import BackendError, BackendUnavailableError, mask_text

from .options import RedisOptions

if TYPE_CHECKING:
    import redis

T = TypeVar("T")


BACKOFF_BASE: Final = 0.05
BACKOFF_CAP: Final = 1.0


def _retryable(exc: Exception) -> bool:
    import redis.exceptions as rex

    return isinstance(exc, (rex.ConnectionError, rex.TimeoutError)) and not isinstance(exc, rex.AuthenticationError)


# Every connection of this process, so that a call that finds a server unavailable can cut
# short the calls still waiting on it (a lease renewal in another thread, say), which would
# otherwise each wait out their own retry budget (see run()).
_CONNECTIONS: weakref.WeakSet[RedisConnection] = weakref.WeakSet()
_CONNECTIONS_LOCK = threading.Lock()


class RedisConnection:
    """A lazily created pool and client for one URI, with error translation."""

    __slots__ = ("options", "_client", "_lock", "_gave_up", "__weakref__")

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self._gave_up = float("-inf")  # monotonic time a call to this URI last found it unavailable
        with _CONNECTIONS_LOCK:
            _CONNECTIONS.add(self)

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
        A call that gives up cuts short the calls to the same URI still under way, in every
        pool of this process: they fail at once with the same error rather than each after
        its own timeouts, so a server that stops answering fails a run in one retry budget.
        """
        started = time.monotonic()
        failures = 0
        while True:
            try:
                return action(self.client)
            except Exception as exc:
                if self._gave_up >= started:  # cut short: whatever it raised, the server is not answering
                    raise self._unavailable(exc) from exc
                if failures >= self.options.retries or not _retryable(exc):
                    if _retryable(exc):
                        self._cut_short_others()
                    self.translate(exc)
                failures += 1
                time.sleep(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1)))

    def _cut_short_others(self) -> None:
        """Mark the URI unavailable for the calls under way and disconnect their sockets, which wakes them."""
        now = time.monotonic()
        uri = str(self.options.uri)
        with _CONNECTIONS_LOCK:
            same = [connection for connection in _CONNECTIONS if str(connection.options.uri) == uri]
        for connection in same:
            connection._gave_up = now
            client = connection._client
            if client is not None:
                client.connection_pool.disconnect()

    def _unavailable(self, exc: Exception) -> BackendUnavailableError:
        reason = mask_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.options.uri)
        return BackendUnavailableError(
            f"redis at {self.options.uri} is unavailable after {self.options.retries} retries "
            f"({type(exc).__name__}: {reason}): is redis-server running? check host/port"
        )

    def translate(self, exc: Exception) -> NoReturn:
        """Re-raise ``exc`` as a Cascade error when it came from redis; as is otherwise."""
        import redis.exceptions as rex

        uri = self.options.uri
        reason = mask_text(_reason(exc), uri)
        if isinstance(exc, rex.AuthenticationError) or (
            isinstance(exc, rex.ResponseError) and str(exc).startswith(("NOAUTH", "WRONGPASS"))
        ):
            raise BackendUnavailableError(
                f"redis at {uri} refused the credentials ({reason}): check the user name and password in the URI"
            ) from exc
        if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
            raise self._unavailable(exc) from exc
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


def _reason(exc: Exception) -> str:
    """The first line of a redis error without the command it quotes: a pipeline's error text
    names the failed command with its arguments, and those may be payload bytes."""
    text = str(exc)
    if not text:
        return type(exc).__name__
    marker = " of pipeline caused error: "
    if marker in text:
        text = text.split(marker, 1)[1]
    line = text.splitlines()[0] if text.splitlines() else type(exc).__name__
    return line if len(line) <= 200 else line[:200] + "..."
