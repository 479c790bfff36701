"""The Dask executor: each Cascade task call is one Dask task (docs/executors.md).

A call's Dask task returns ``(ok, body, duration)``: the encoded result (or the task's
exception) and the seconds it took. The driver fetches that small tuple (a worker in the
driver's own process leaves it in the executor's inbox instead), stores the body,
and hands the task's future back to the engine as the result (a :class:`DaskValue`), so a
downstream call gets the future as its argument: Dask moves the body from worker to worker
and the downstream decodes it there. The driver sees values only where the engine asks for
them (:meth:`DaskExecutor.gather`: the run's targets, cache keys made from values).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from typing import Any

from cascade_core.plugin import (
    BackendError,
    BackendUnavailableError,
    InvalidURIError,
    Outcome,
    SerializationError,
    TaskCall,
    boolean,
    positive_int,
    run_call_async,
    timeout_seconds,
)

from .worker import (
    _INBOX_LOCK,
    _INBOXES,
    DaskValue,
    StoredBlob,
    _decode,
    _detach,
    _on_worker,
    _pickle_error,
    _post,
    _result,
    _run_on_worker,
    _ship_by_value,
    _Shipped,
)

DEFAULT_PORT = 8786
IN_FLIGHT = 100  # the default max_workers: calls submitted to the cluster at once
# A Client batches what it sends the scheduler, one batch per 10 ms. Raw Dask submits a whole
# graph at once; Cascade submits each call when its upstreams' results are stored, so a chain
# would wait for that window at every link: the executor's client sends every 2 ms at most (as
# Dask's scheduler and workers do to each other).
SEND_INTERVAL = 0.002


class DaskExecutor:
    """Runs task calls on a Dask cluster through a ``distributed.Client``.

    ``DaskExecutor(client)`` uses a client you made (and close); :meth:`from_uri` makes the
    client (and for ``dask+local://`` the cluster) and closes them in :meth:`close`.
    """

    in_driver = False  # tasks run on the workers, never in the driver's thread

    def __init__(
        self, client: Any, *, max_workers: int | None = None, cluster: Any = None, owns_client: bool = False
    ) -> None:
        self.client = client
        self._cluster = cluster
        self._owns_client = owns_client
        # Dask queues submitted tasks on its scheduler: keeping more in flight than the cluster has
        # threads means its workers never wait for the driver's next submit.
        self.max_workers = max_workers or max(IN_FLIGHT, sum(client.nthreads().values()))
        self._picklable: set[int] = set()  # ids of tasks whose function pickled already
        self._shipped: dict[Any, _Shipped] = {}
        self._lock = threading.Lock()
        self._prefix = os.urandom(4).hex()  # keeps two executors' runs of one graph apart on a cluster
        self._count = itertools.count()
        self._arrived: Any = None  # queue.SimpleQueue of finished futures, made with the collector thread
        self._inbox: dict[str, tuple | None] = {}  # results that workers in this process left (worker._INBOXES)
        _INBOXES[self._prefix] = self._inbox

    @classmethod
    def from_uri(cls, uri: Any) -> DaskExecutor:
        """``dask://HOST:PORT``, ``dask+tls://HOST:PORT?ca_file=..`` or ``dask+local://?n_workers=..``."""
        try:
            import distributed
        except ImportError as exc:
            raise BackendError(f"{uri.scheme}:// needs distributed: pip install cascade-dask") from exc
        common = {"timeout": timeout_seconds, "max_workers": positive_int}
        if uri.scheme == "dask+local":
            options = uri.parse_options(
                {**common, "n_workers": positive_int, "threads_per_worker": positive_int, "processes": boolean},
                defaults={"timeout": 30.0},
            )
            timeout, max_workers = options.pop("timeout"), options.pop("max_workers", None)
            cluster = distributed.LocalCluster(dashboard_address=":0", **options)  # any free port
            try:
                client = distributed.Client(cluster, timeout=timeout)
            except BaseException:
                cluster.close()
                raise
            return cls(client, max_workers=max_workers, cluster=cluster, owns_client=True)
        security = None
        if uri.scheme == "dask+tls":
            files = {"ca_file": str, "cert_file": str, "key_file": str}
            options = uri.parse_options({**common, **files}, defaults={"timeout": 10.0})
            missing = [name for name in files if name not in options]
            if missing:
                raise InvalidURIError(
                    f"{uri} needs the option(s) {', '.join(missing)}: the CA, certificate and key files of the "
                    "client's TLS identity (dask+tls://host:8786?ca_file=ca.pem&cert_file=me.pem&key_file=me.key)"
                )
            security = distributed.Security(
                tls_ca_file=options.get("ca_file"),
                tls_client_cert=options.get("cert_file"),
                tls_client_key=options.get("key_file"),
                require_encryption=True,
            )
            address = f"tls://{uri.host or 'localhost'}:{uri.port or DEFAULT_PORT}"
        else:
            options = uri.parse_options(common, defaults={"timeout": 10.0})
            address = f"tcp://{uri.host or 'localhost'}:{uri.port or DEFAULT_PORT}"
        timeout = options["timeout"]
        try:
            client = distributed.Client(address, timeout=timeout, security=security, set_as_default=False)
        except (OSError, asyncio.TimeoutError) as exc:
            refused = _tls_refusal(exc) if security is not None else None
            if refused is not None:
                raise BackendUnavailableError(
                    f"the Dask scheduler at {uri} refused the TLS connection ({refused}): check that ca_file is "
                    "the CA that signed the scheduler's certificate, and that cert_file and key_file are a pair "
                    "signed by a CA the scheduler trusts"
                ) from None
            raise BackendUnavailableError(
                f"no Dask scheduler answers at {uri} within {timeout:g} s: start one with `dask scheduler` "
                f"or check the address ({type(exc).__name__})"
            ) from None
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, asyncio.TimeoutError, TimeoutError):
            client.close()
            raise BackendUnavailableError(
                f"the Dask scheduler at {uri} has no workers (waited {timeout:g} s): start one with "
                f"`dask worker {address}`"
            ) from None
        return cls(client, max_workers=options.get("max_workers"), owns_client=True)

    # -- the contract --------------------------------------------------------------

    def submit(self, call: TaskCall, done: Any) -> Any:
        """Send ``call`` to the cluster as one Dask task; ``done`` gets its outcome from Dask's callback thread."""
        upstream: list[Any] = []
        args = _detach(call.args, upstream, {})
        kwargs = _detach(call.kwargs, upstream, {}) if call.kwargs else call.kwargs
        shipped = self._shipped.get(call.task)
        if shipped is None:
            shipped = self._shipped[call.task] = _Shipped(call.task)
        sent = TaskCall(call.index, call.node_id, shipped, args, kwargs, call.attempt, call.encoding)
        error = self._unpicklable(sent)
        if error is not None:
            done(Outcome(call.index, False, error, None, 0.0, call.attempt))
            return _NOTHING
        # The attempt is in the key so that a retry never gets Dask's cached failure back.
        key = f"{call.task.name}-{call.node_id[:16]}-{call.attempt}-{self._prefix}{next(self._count)}"
        worker_fn = _run_async_on_worker if call.is_async else _run_on_worker
        client = self.client
        comm = client.scheduler_comm  # a new one after a reconnect
        if comm is not None and comm.interval > SEND_INTERVAL:
            comm.interval = SEND_INTERVAL
        inbox = self._inbox
        inbox[key] = None  # awaited: a worker of this process may post its result here (worker._post)
        try:
            # A task's resources= are Dask's worker resources too: only a worker that has them takes it.
            resources = getattr(call.task, "resources", None) or None
            future = client.submit(
                worker_fn, sent, upstream, (self._prefix, key), key=key, pure=False, resources=resources
            )
        except BaseException:
            inbox.pop(key, None)
            raise
        arrived = self._arrived or self._start_collector()
        future.add_done_callback(lambda future: arrived.put((future, call, done)))
        return future

    def _start_collector(self) -> Any:
        with self._lock:
            if self._arrived is None:
                import queue

                self._arrived = queue.SimpleQueue()
                threading.Thread(target=self._collect, args=(self._arrived,), name="cascade-dask", daemon=True).start()
            return self._arrived

    def _collect(self, arrived: Any) -> None:
        """Fetch the results of finished futures a batch at a time (one gather), and report them."""
        while True:
            batch = [arrived.get()]
            while not arrived.empty():
                batch.append(arrived.get())
            if any(item is None for item in batch):
                return
            self._report(batch)
            del batch  # hold no future of a finished run: its value is released when the run drops it

    def _report(self, batch: list[Any]) -> None:
        inbox, posted = self._inbox, {}
        with _INBOX_LOCK:  # reported: a worker still running a cancelled call no longer posts
            taken = [inbox.pop(item[0].key, None) for item in batch]
        for item, result in zip(batch, taken):
            if result is not None and item[0].status == "finished":  # not cancelled meanwhile
                posted[id(item)] = result
        finished = [item for item in batch if id(item) not in posted and item[0].status == "finished"]
        try:
            results = self.client.gather([item[0] for item in finished]) if finished else []
        except BaseException:  # a result lost with its worker, say: look at each one
            finished, results = [], []
        gathered = {id(item): result for item, result in zip(finished, results)}
        gathered.update(posted)
        for item in batch:
            future, call, done = item
            result = gathered.get(id(item))
            if result is None:
                done(_outcome(future, call))
            else:
                done(_outcome_of(result, future, call))

    def gather(self, values: list[Any]) -> list[Any]:
        """The values behind any :class:`DaskValue` in ``values`` (fetched in one call) or
        :class:`StoredBlob` (its blob read here); the rest as is."""
        wanted = [i for i, value in enumerate(values) if type(value) is DaskValue]
        stored = [i for i, value in enumerate(values) if type(value) is StoredBlob]
        if not wanted and not stored:
            return values
        fetched = self.client.gather([values[i].future for i in wanted]) if wanted else []
        out = list(values)
        for i, (_, body, _) in zip(wanted, fetched):
            value = values[i]
            out[i] = _decode(value.encoding, body, f"the result of Dask task {value.future.key!r}")
        for i in stored:
            value = values[i]
            out[i] = _decode(value.encoding, value.reference, "a stored result")
        return out

    def hold_reference(self, reference: bytes, encoding: Any) -> StoredBlob:
        """A handle to a stored result whose body is the blob reference ``reference`` (``encoding``:
        the run's, naming its blob store): downstream calls get the reference and their worker reads
        the blob, so a resumed run never moves the value through the driver."""
        return StoredBlob(reference, encoding)

    def close(self) -> None:
        """Close the client (which releases every future of it), then a cluster made for the run."""
        with self._lock:
            client, cluster = (self.client if self._owns_client else None), self._cluster
            self._owns_client, self._cluster = False, None
            arrived, self._arrived = self._arrived, None
            _INBOXES.pop(self._prefix, None)
        if arrived is not None:
            arrived.put(None)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def __repr__(self) -> str:
        """The scheduler's address (its scheme: tcp://, tls://, inproc://) and the number of workers
        the client last heard of, with no round trip to the scheduler: the engine calls this once
        per run for an executor object (its label). The client refreshes that number itself (its
        ``scheduler-info-interval``, 2 s by default) and when it connects or waits for workers."""
        client = self.client
        scheduler = getattr(client, "scheduler", None)
        address = getattr(scheduler, "address", None) or "?"
        info = getattr(client, "_scheduler_identity", None)  # the client's cache of scheduler_info()
        workers = info.get("n_workers") if isinstance(info, dict) and client.status == "running" else None
        if not isinstance(workers, int):
            return f"DaskExecutor({address})"
        return f"DaskExecutor({address}, {workers} worker{'s' * (workers != 1)})"

    # -- pickling ------------------------------------------------------------------

    def _unpicklable(self, call: TaskCall) -> SerializationError | None:
        """The one-line error for a call whose function or arguments cloudpickle cannot pickle."""
        import cloudpickle

        task = call.task
        if id(task) not in self._picklable:
            _ship_by_value(cloudpickle, task.fn)
            reason = _pickle_error(cloudpickle, task.fn)
            if reason is not None:
                return SerializationError(
                    f"task {task.name!r} cannot be sent to Dask workers: its function cannot be pickled: {reason}"
                )
            self._picklable.add(id(task))
        if _pickle_error(cloudpickle, (call.args, call.kwargs)) is None:
            return None
        named = [(f"#{i}", value) for i, value in enumerate(call.args)] + list(call.kwargs.items())
        name, reason = next(
            ((name, why) for name, value in named if (why := _pickle_error(cloudpickle, value)) is not None),
            ("?", "?"),
        )
        return SerializationError(
            f"task {task.name!r} cannot be sent to Dask workers: argument {name} cannot be pickled: {reason}"
        )


class _Nothing:
    """The handle of a call that never reached the cluster."""

    def cancel(self) -> bool:
        return False


_NOTHING = _Nothing()


async def _run_async_on_worker(call: TaskCall, upstream: list[Any], inbox: tuple[str, str] | None = None) -> tuple:
    """The same for an ``async def`` task: Dask runs a coroutine function on the worker's event loop."""
    return _post(_result(await run_call_async(_on_worker(call, upstream))), inbox)


def _tls_refusal(exc: BaseException) -> str | None:
    """Why a TLS handshake with the scheduler failed (one line), or None when ``exc`` is not that."""
    import re
    import ssl

    causes = [cause for cause in (exc.__cause__, exc.__context__) if isinstance(cause, ssl.SSLError)]
    verified = [message for cause in causes if (message := getattr(cause, "verify_message", None))]
    if verified:  # we refused the scheduler's certificate
        return verified[0]
    found = re.search(r"SSLError: \[SSL: \w+\] ([^(\n]+)", str(exc))  # the scheduler refused ours
    if found:
        return found.group(1).strip()
    return (causes[0].reason or type(causes[0]).__name__) if causes else None


def _outcome(future: Any, call: TaskCall) -> Outcome:
    """The outcome of a finished, failed or cancelled Dask future (in Dask's callback thread)."""
    if future.cancelled():
        return Outcome(call.index, False, asyncio.CancelledError(), None, 0.0, call.attempt)
    try:
        result = future.result()
    except BaseException as exc:  # the worker died too often (KilledWorker), or the result did not unpickle
        return Outcome(call.index, False, exc, None, 0.0, call.attempt)
    return _outcome_of(result, future, call)


def _outcome_of(result: tuple, future: Any, call: TaskCall) -> Outcome:
    ok, payload, duration = result
    if ok:
        return Outcome(call.index, True, DaskValue(future, call.encoding), payload, duration, call.attempt)
    return Outcome(call.index, False, payload, None, duration, call.attempt)
