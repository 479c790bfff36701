"""The redis deployment behind one backend URI, and redis errors translated into Cascade's.

A state factory or a cache backend owns one ``RedisConnection``; the state backends a
factory makes share it. It opens, on first use, one server's pool, a Sentinel-managed
master's pool (clients.py) or a cluster's slot map with a pool per master (cluster.py).
``close()`` disconnects everything; a later call reconnects.

redis-py's own ``ConnectionPool`` repr shows the password (redis-py #3993), so the pools
and clients stay private here and everything we print goes through ``str(uri)``, which masks.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

from cascade_core.plugin import BackendError, BackendUnavailableError, CascadeError, mask_text

from .options import RedisOptions
from .topology import CLUSTER, SENTINEL

if TYPE_CHECKING:
    import redis
    from redis.client import Pipeline

    from .clients import SingleMaster
    from .cluster import ClusterMap

    Deployment = SingleMaster | ClusterMap

T = TypeVar("T")


BACKOFF_BASE: Final = 0.05
BACKOFF_CAP: Final = 1.0


class ReplicasShortError(Exception):
    """A write reached its master, but fewer replicas than ``min_replicas`` acknowledged it in time."""

    def __init__(self, acknowledged: int, wanted: int, timeout: float) -> None:
        super().__init__(f"{acknowledged} of the {wanted} replicas asked for acknowledged a write within {timeout:g} s")
        self.acknowledged = acknowledged


def _lost(exc: Exception) -> bool:
    """A lost connection or a timeout: the server is not answering."""
    import redis.exceptions as rex

    if isinstance(exc, rex.AuthenticationError) or _sentinels_refused(exc):
        return False
    return isinstance(exc, (rex.ConnectionError, rex.TimeoutError))


def _sentinels_refused(exc: Exception) -> bool:
    """redis-py reports sentinels that refuse the password as "no master found" (with the cause in its text)."""
    from redis.sentinel import MasterNotFoundError

    return isinstance(exc, MasterNotFoundError) and "AuthenticationError" in str(exc)


def _moving(exc: Exception) -> bool:
    """A cluster moving slots or failing over: worth another try once the map of masters is read again."""
    import redis.exceptions as rex

    return isinstance(exc, (rex.MovedError, rex.AskError, rex.TryAgainError, rex.ClusterDownError))


# Every connection of this process, so that a call that finds a server unavailable can cut
# short the calls still waiting on it (a lease renewal in another thread, say), which would
# otherwise each wait out their own retry budget (see retrying()).
_CONNECTIONS: weakref.WeakSet[RedisConnection] = weakref.WeakSet()
_CONNECTIONS_LOCK = threading.Lock()


class RedisStoreBase:
    """What the state store and the cache share: options, URI, payload settings, a connection of
    their own, and ``describe()``, ``close()`` and the repr."""

    trusted_store: Final = False  # networked: the engine warns about unsigned pickles

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        self.uri = options.uri
        self.serializer = options.serializer
        self.max_payload_bytes = options.max_value_size
        self.connection = RedisConnection(options)

    def describe(self) -> str:
        """What the URI reaches (for ``cascade backends check``): a server, a Sentinel master, a cluster."""
        return self.connection.describe()

    def close(self) -> None:
        self.connection.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.uri)!r})"


class RedisConnection:
    """The lazily opened deployment of one URI, with retries and error translation."""

    __slots__ = ("options", "_client", "_lock", "_gave_up", "_retry", "__weakref__")

    def __init__(self, options: RedisOptions) -> None:
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.options = options
        # redis-py's own retry loop; which errors are worth retrying is decided in _failed.
        # ExponentialBackoff waits base * 2**failures: 0.05 s, 0.1 s, 0.2 s, ... at most BACKOFF_CAP.
        backoff = ExponentialBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE / 2)
        self._retry = Retry(backoff, options.retries, supported_errors=(Exception,))
        self._client: Deployment | None = None
        self._lock = threading.Lock()
        self._gave_up = float("-inf")  # monotonic time a call to this URI last found it unavailable
        with _CONNECTIONS_LOCK:
            _CONNECTIONS.add(self)

    def deployment(self) -> Deployment:
        """The clients of the deployment; creating them opens no socket (the first command does)."""
        deployment = self._client
        if deployment is None:
            with self._lock:
                deployment = self._client
                if deployment is None:
                    from .clients import SingleMaster
                    from .cluster import ClusterMap

                    options = self.options
                    deployment = self._client = (
                        ClusterMap(options) if options.kind == CLUSTER else SingleMaster(options)
                    )
        return deployment

    @property
    def client(self) -> redis.Redis:
        """The one server's (or Sentinel-named master's) client; on a cluster, some master's."""
        return self.deployment().client

    # -- calls -----------------------------------------------------------------------

    def on(self, key: bytes | str, action: Callable[[redis.Redis], T]) -> T:
        """``action(client)`` on the master that serves ``key`` (every key of a run has one)."""
        return self.retrying(lambda: action(self.deployment().client_for(key)))

    def per_master(
        self,
        names: Sequence[bytes | str],
        queue: Callable[[Pipeline, list[list[int]]], None],
        *,
        by_slot: bool = False,
        write: bool = False,
    ) -> list[tuple[list[list[int]], list[Any]]]:
        """One pipeline per master serving some of ``names``: ``queue(pipe, groups)`` queues the commands
        for the names whose indexes are in ``groups`` (one group per master, or per cluster slot with
        ``by_slot``). Returns (groups, replies) per master: one round trip each."""

        def attempt() -> list[tuple[list[list[int]], list[Any]]]:
            done = []
            for client, groups in self.deployment().groups(names, by_slot):
                pipe = client.pipeline(transaction=False)
                queue(pipe, groups)
                done.append((groups, self.execute(pipe, write=write)))
            return done

        return self.retrying(attempt) if names else []

    def mget(self, names: Sequence[bytes | str]) -> list[Any]:
        """The values of ``names``, in order (None where missing): one ``MGET`` per slot, one round trip per master."""

        def queue(pipe: Pipeline, groups: list[list[int]]) -> None:
            for group in groups:
                pipe.mget([names[index] for index in group])

        values: list[Any] = [None] * len(names)
        for groups, replies in self.per_master(names, queue, by_slot=True):
            for group, found in zip(groups, replies, strict=True):
                for index, value in zip(group, found, strict=True):
                    values[index] = value
        return values

    def each_master(self, action: Callable[[redis.Redis], T]) -> list[T]:
        """``action(client)`` on every master (one for a server or a Sentinel service)."""
        return self.retrying(lambda: [action(client) for client in self.deployment().masters()])

    def slot_groups(self, names: Sequence[bytes | str], indexes: list[int]) -> list[list[int]]:
        """``indexes`` split so that each part's names share a cluster slot (one part off a cluster)."""
        return self.deployment().slot_groups(names, indexes)

    def execute(self, pipe: Pipeline, *, write: bool = False) -> list[Any]:
        """Send ``pipe``; with ``write`` and ``min_replicas``, also ``WAIT`` for that many replicas.

        Raises the first error a command met, without the command (a pipeline's error quotes its
        arguments, which may be payload bytes), or ReplicasShortError.
        """
        wanted = self.options.min_replicas if write else 0
        if wanted:
            pipe.execute_command("WAIT", wanted, int(self.options.min_replicas_timeout * 1000))
        replies = pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        if wanted:
            acknowledged = int(replies.pop())
            if acknowledged < wanted:
                raise ReplicasShortError(acknowledged, wanted, self.options.min_replicas_timeout)
        return replies

    def describe(self) -> str:
        """What this URI reaches: a server, a Sentinel service's master, or a cluster's masters and slots."""
        return self.retrying(lambda: self.deployment().describe())

    def retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``; redis errors become Cascade errors naming the masked URI.

        A lost connection, a timeout, a cluster redirection or a write the replicas did not
        acknowledge is retried ``retries`` times, after 0.05 s, 0.1 s, 0.2 s, ... (at most 1 s),
        with the map of masters read again: every action here is idempotent (HSET, EXPIRE, SET,
        DEL, the lease scripts), so running it twice stores the same thing. A refused password is
        not retried. A call that finds the server gone cuts short the calls to the same URI still
        under way, in every pool of this process: they fail at once with the same error rather
        than each after its own timeouts, so a server that stops answering fails a run in one
        retry budget.
        """
        started = time.monotonic()

        def failed(exc: Exception) -> None:  # after each failed attempt: give up, or read the masters again
            if self._gave_up >= started:  # cut short: whatever it raised, the server is not answering
                raise self._unavailable(exc) from exc
            if not self._retryable(exc):
                self._give_up(exc)
            deployment = self._client
            if deployment is not None:
                deployment.invalidate()

        try:
            return self._retry.call_with_retry(attempt, failed)
        except CascadeError:
            raise
        except Exception as exc:  # the last retry failed too
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> NoReturn:
        if _lost(exc):
            self._cut_short_others()
        self.translate(exc)

    def _retryable(self, exc: Exception) -> bool:
        import redis.exceptions as rex

        if _lost(exc) or isinstance(exc, ReplicasShortError):
            return True
        if isinstance(exc, rex.ResponseError) and str(exc).startswith("UNBLOCKED"):
            return True  # a WAIT cut short because its master just became a replica: a failover
        return self.options.kind == CLUSTER and _moving(exc)

    def _cut_short_others(self) -> None:
        """Mark the URI unavailable for the calls under way and disconnect their sockets, which wakes them."""
        now = time.monotonic()
        uri = str(self.options.uri)
        with _CONNECTIONS_LOCK:
            same = [connection for connection in _CONNECTIONS if str(connection.options.uri) == uri]
        for connection in same:
            connection._gave_up = now
            deployment = connection._client
            if deployment is not None:
                deployment.disconnect()

    def _unavailable(self, exc: Exception) -> BackendUnavailableError:
        options = self.options
        reason = mask_text(_reason(exc), options.uri)
        if isinstance(exc, ReplicasShortError):
            return BackendUnavailableError(
                f"redis at {options.uri}: {reason}, after {options.retries} retries (min_replicas="
                f"{options.min_replicas}); the write may be lost in a failover: check that the replicas are up "
                "and in sync, or lower min_replicas"
            )
        advice = {
            SENTINEL: f"are the sentinels up, and do they know the service {options.service!r}? check the hosts",
            CLUSTER: "is the cluster up (CLUSTER INFO says cluster_state:ok)? check the hosts",
        }.get(options.kind, "is redis-server running? check host/port")
        return BackendUnavailableError(
            f"redis at {options.uri} is unavailable after {options.retries} retries "
            f"({type(exc).__name__}: {reason}): {advice}"
        )

    def translate(self, exc: Exception) -> NoReturn:
        """Re-raise ``exc`` as a Cascade error when it came from redis; as is otherwise."""
        import redis.exceptions as rex

        uri = self.options.uri
        reason = mask_text(_reason(exc), uri)
        if _sentinels_refused(exc):
            raise BackendUnavailableError(
                f"the sentinels of {uri} refused the credentials: check sentinel_username and sentinel_password "
                "in the URI"
            ) from exc
        if isinstance(exc, rex.AuthenticationError) or (
            isinstance(exc, rex.ResponseError) and str(exc).startswith(("NOAUTH", "WRONGPASS"))
        ):
            raise BackendUnavailableError(
                f"redis at {uri} refused the credentials ({reason}): check the user name and password in the URI"
            ) from exc
        if self._retryable(exc):
            raise self._unavailable(exc) from exc
        if _moving(exc):
            raise BackendError(
                f"redis at {uri} is a Redis Cluster node ({reason}): use redis+cluster:// with the same host and port"
            ) from exc
        if isinstance(exc, rex.RedisError):
            raise BackendError(f"redis at {uri} refused a command: {reason}") from exc
        raise exc

    def close(self) -> None:
        """Disconnect every pooled connection. Calling it twice is harmless."""
        with self._lock:
            deployment, self._client = self._client, None
        if deployment is not None:
            deployment.disconnect()

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
    if text.startswith("No master found for "):  # redis-py appends a repr of every sentinel it asked
        text = text.split(" : ", 1)[0]
    line = text.splitlines()[0] if text.splitlines() else type(exc).__name__
    return line if len(line) <= 200 else line[:200] + "..."
