"""The engine: resume, cache lookups, scheduling, storing results, events.

Data flow of one run (docs/architecture.md draws it)::

    build_graph ─▶ resume (result_ids) ─▶ cache prefetch (one get_many)
                 ─▶ prune to what the targets need ─▶ load needed stored values
                 ─▶ schedule ready nodes (inline, worker threads, or the event loop)
                 ─▶ each completed batch: put_results + cache set_many, then release downstream

A node's result is stored before any node that depends on it starts, so a run that
crashes at any point resumes without redoing finished work.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._cache_policy import key_maker
from ._codec import Codec, cache_storage_key, keys_from_env, state_key
from ._errors import (
    BackendUnavailableError,
    CascadeError,
    DefinitionError,
    HashingError,
    IntegrityError,
    SerializationError,
    TaskFailed,
)
from ._events import make_events
from ._gc import collection_paused
from ._graph import Graph, build_graph, encode_inputs, shape_result, substitute
from ._hashing import UnhashableInput, digest, encode
from ._leases import Backoff
from ._resolve import CacheSpec, StateSpec, resolve_cache, resolve_state
from ._task import LazyResult

log = logging.getLogger("cascade")

_MISSING: Any = object()

# Node states during a run.
PENDING, DONE, FAILED, SKIPPED = 0, 1, 2, 3

_STOP = -1


@dataclass
class RunReport:
    """What a run did: its id, status, counts by outcome, duration and value (or error)."""

    run_id: str
    status: str
    counts: dict[str, int]
    duration_s: float
    value: Any = None
    error: TaskFailed | None = None
    failed_task: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def new_run_id() -> str:
    """A fresh, sortable, unique run id such as ``20261127-214233-3f9a1c2b``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + os.urandom(4).hex()


def _check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 200 or not run_id.isprintable() or " " in run_id:
        raise DefinitionError(
            f"run_id must be a non-empty printable string without spaces (at most 200 chars), got {run_id!r}"
        )
    return run_id


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def _default_workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


class Engine:
    """Runs graphs against a state backend (per run id) and a shared cache backend.

    >>> engine = Engine("sqlite:///cascade.db", "sqlite:///cascade.db")   # doctest: +SKIP
    >>> engine.run(total(numbers()), run_id="nightly")                      # doctest: +SKIP
    """

    def __init__(
        self,
        state_backend_factory: Any = None,
        cache_backend: Any = None,
        *,
        max_workers: int | None = None,
        observers: Iterable[object] = (),
        secret_keys: list[bytes] | None = None,
        leases: bool = False,
        lease_ttl: float = 30.0,
    ) -> None:
        self._state_arg = state_backend_factory
        self._cache_arg = cache_backend
        self.max_workers = _check_workers(max_workers)
        self.observers = list(observers)
        self._secret_keys = secret_keys
        if not isinstance(leases, bool):
            raise DefinitionError(f"leases must be True or False, got {leases!r}")
        self.leases = leases
        self.lease_ttl = _check_lease_ttl(lease_ttl)

    def run(
        self,
        target: Any,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_workers: int | None = None,
    ) -> Any:
        """Run ``target`` and return its value; raise TaskFailed when a task failed."""
        report = self.execute(target, params, run_id=run_id, max_workers=max_workers)
        if report.error is not None:
            raise report.error
        return report.value

    async def arun(
        self,
        target: Any,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_workers: int | None = None,
    ) -> Any:
        """The async twin of :meth:`run`: async tasks run on the caller's event loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        try:
            report = await asyncio.to_thread(
                self.execute, target, params, run_id=run_id, max_workers=max_workers, loop=loop, cancel=cancel
            )
        except asyncio.CancelledError:
            cancel.set()  # the run stops at its next step and is recorded as interrupted
            raise
        if report.error is not None:
            raise report.error
        return report.value

    def execute(
        self,
        target: Any,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_workers: int | None = None,
        loop: Any = None,
        cancel: threading.Event | None = None,
    ) -> RunReport:
        """Run ``target`` and return a :class:`RunReport` instead of raising on task failure."""
        started = time.perf_counter()
        if params is not None and not isinstance(params, Mapping):
            from ._errors import ParamError

            raise ParamError(f"params must be a dict of name -> value, got {type(params).__name__}")
        graph = build_graph(target, params)
        workers = _check_workers(max_workers) or self.max_workers or _default_workers()
        state_spec = resolve_state(self._state_arg)
        try:
            cache_spec = resolve_cache(self._cache_arg)
        except BaseException:
            state_spec.close()
            raise
        try:
            if run_id is None:
                run_id = getattr(state_spec.instance, "run_id", None) or new_run_id()
            run_id = _check_run_id(run_id)
            if state_spec.instance is not None and state_spec.instance.run_id != run_id:
                raise DefinitionError(
                    f"run_id {run_id!r} differs from the state backend's run id {state_spec.instance.run_id!r}: "
                    "pass a factory to bind other run ids"
                )
            state = state_spec.open(run_id)
            try:
                run = _Run(self, graph, state, state_spec, cache_spec, run_id, workers, loop, cancel)
                try:
                    report = run.execute()
                finally:
                    run.release_run()  # on every way out; only a driver that dies leaves its lease to expire
            finally:
                if state_spec.instance is None:
                    state.close()
        finally:
            try:
                state_spec.close()
            finally:
                cache_spec.close()
        report.duration_s = time.perf_counter() - started
        return report

    def _keys(self) -> list[bytes]:
        return self._secret_keys if self._secret_keys is not None else keys_from_env()


def _positions(flags: bytearray, value: int = 1) -> Iterator[int]:
    """The indexes of the bytes of ``flags`` equal to ``value``, found at C speed."""
    index = -1
    while (index := flags.find(value, index + 1)) >= 0:
        yield index


# (state label, run id) -> run-lease names a driver of this process could not release on its way out.
_UNRELEASED: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}


def _check_lease_ttl(value: Any) -> float:
    import math

    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0.5 <= value <= 86400
    ):
        raise DefinitionError(f"lease_ttl must be a number of seconds from 0.5 to 86400, got {value!r}")
    return float(value)


def _check_workers(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DefinitionError(f"max_workers must be a whole number >= 1, got {value!r}")
    return value


class _Guarded:
    """A backend as one run's lease keepers call it: once the run found it unavailable, a call
    fails at once instead of waiting out the store's retry budget again (see _Run.available)."""

    def __init__(self, backend: Any, run: _Run) -> None:
        self._backend = backend
        self._run = run

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if not callable(attr):
            return attr
        backend, run = self._backend, self._run

        def call(*args: Any, **kwargs: Any) -> Any:
            for down, exc in run._down:
                if down is backend:
                    raise BackendUnavailableError(str(exc))
            try:
                return attr(*args, **kwargs)
            except BackendUnavailableError as exc:
                run._note_unavailable(exc, backend)
                raise

        return call


class _Run:
    """The mutable state of one execution of one graph."""

    def __init__(
        self,
        engine: Engine,
        graph: Graph,
        state: Any,
        state_spec: StateSpec,
        cache_spec: CacheSpec,
        run_id: str,
        workers: int,
        loop: Any,
        cancel: threading.Event | None = None,
    ) -> None:
        self.cancel = cancel  # set when the awaiting arun() is cancelled
        self.graph = graph
        self.nodes = graph.nodes
        self.state = state
        self.cache = cache_spec.backend
        self.state_label = state_spec.label
        self.cache_label = cache_spec.label
        self.run_id = run_id
        self.workers = workers
        self.loop = loop
        self._own_loop: Any = None
        keys = engine._keys()
        self.codec = Codec(
            getattr(state, "serializer", "pickle"), keys, trusted_store=getattr(state, "trusted_store", False)
        )
        self.cache_codec = Codec(
            getattr(self.cache, "serializer", "pickle"), keys, trusted_store=getattr(self.cache, "trusted_store", False)
        )
        self.max_payload = getattr(state, "max_payload_bytes", None)
        self.cache_max_payload = getattr(self.cache, "max_payload_bytes", None)
        self.events = make_events(engine.observers)
        n = len(graph.nodes)
        self.results: list[Any] = [_MISSING] * n
        self.status = bytearray(n)
        self.keys: list[str | None] = [None] * n
        self.looked_up = bytearray(n)
        self._key_makers: dict[Any, Callable[[bytes], str]] = {}  # task -> its cache-key function for this run
        self.counts = {
            "total": n,
            "executed": 0,
            "cached": 0,
            "resumed": 0,
            "by_other_drivers": 0,
            "failed": 0,
            "skipped": 0,
        }
        self.failures: list[tuple[int, BaseException]] = []
        self.skipped: dict[str, str] = {}
        self.debug = log.isEnabledFor(logging.DEBUG)
        self._refused: set[str] = set()  # storage keys of the cache entries refused (and logged) in this run
        self._down: list[tuple[Any, BackendUnavailableError]] = []  # backends this run calls no more
        self._init_leases(engine)
        run_keeper = self.run_lease.keeper if self.run_lease is not None else None
        for keeper in (run_keeper, self.node_leases, self.cache_locks):
            if keeper is not None:
                keeper.backend = _Guarded(keeper.backend, self)
        # Per-task records for `cascade runs show`, when the backend can keep them.
        # index -> (status, duration, size, error or reason, perf_counter when it finished);
        # turned into JSON once, at the end.
        self._clock = (time.time(), time.perf_counter())
        self._state_prefix = state_key(run_id, "")  # + node id: the storage key of a result
        self.records: dict[int, tuple[str, float, int | None, str | None, float]] | None = (
            {} if callable(getattr(state, "put_task_records", None)) else None
        )

    # -- the run -------------------------------------------------------------

    def execute(self) -> RunReport:
        graph, nodes, state = self.graph, self.nodes, self.state
        driver = self._hold_run()  # first: a driver refused the run writes nothing
        stored = state.result_ids()
        # Backends stamp `created` and `updated` themselves (see docs/backends.md).
        state.set_run_info(
            {
                "status": "running",
                "tasks": str(len(nodes)),
                "target": ",".join(dict.fromkeys(nodes[i].task.name for i in graph.targets)),
                **driver,
            }
        )
        log.info(
            "run %s started: %d tasks, state %s, cache %s%s",
            self.run_id,
            len(nodes),
            self.state_label,
            self.cache_label,
            f", resuming ({len(stored)} results stored)" if stored else "",
        )
        if self.events:
            self.events.hook.cascade_run_started(
                run_id=self.run_id, tasks=len(nodes), state=self.state_label, cache=self.cache_label
            )
        try:
            self._prepare_and_schedule(stored)
        except BaseException as exc:
            # Ctrl-C, a cancelled arun, a bad input found while planning, or a store that went
            # away: say so in the run's info, and keep what is known of its tasks, if the store
            # still answers.
            import asyncio

            interrupted = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
            self._note_unavailable(exc)
            if not self.available(self.state):
                raise  # its info says "running" until its run lease expires
            try:
                self.state.set_run_info(
                    {
                        "status": "interrupted" if interrupted else "crashed",
                        "error": f"{type(exc).__name__}: {_one_line(exc)}",
                    }
                )
                if self.records:
                    self.state.put_task_records(self._record_json())
            except Exception:  # the store may be the reason; the original error matters more
                pass
            raise
        return self._finish()

    def available(self, backend: Any) -> bool:
        """False once ``backend`` raised BackendUnavailableError in this run: the run calls it no
        more, since each call to a store that stopped answering waits out its whole retry budget."""
        return all(down is not backend for down, _ in self._down)

    def _note_unavailable(self, exc: BaseException, backend: Any = None) -> None:
        """Mark the backend that raised ``exc`` unavailable: ``backend`` when given, else the state
        or the cache, whichever's method the traceback passes through (both when neither's is).
        A state and a cache at one URI are one store: both are marked."""
        if not isinstance(exc, BackendUnavailableError):
            return
        suspects = [self.state, self.cache]
        if self.state_label != self.cache_label:
            if backend is not None:
                suspects = [backend]
            tb = exc.__traceback__
            while tb is not None and len(suspects) > 1:
                # Zero cost until a store fails, unlike wrapping each backend call on the hot path.
                owner = tb.tb_frame.f_locals.get("self")
                if any(owner is suspect for suspect in suspects):
                    suspects = [owner]
                tb = tb.tb_next
        if backend is not None and all(backend is not suspect for suspect in suspects):
            suspects.append(backend)
        self._down.extend((suspect, exc) for suspect in suspects if self.available(suspect))

    def _prepare_and_schedule(self, stored: set[str]) -> None:
        self._schedule(self._prepare(stored))

    def _prepare(self, stored: set[str]) -> bytearray:
        """Take stored results and cache hits, and decide which nodes must run."""
        nodes = self.nodes
        resumed = [node.index for node in nodes if node.id in stored] if stored else []
        for index in resumed:
            self.status[index] = DONE
        found, wanted = self._prefetch_cache()
        hits: dict[int, tuple[bytes, bytes, Any]] = {}
        while True:
            must_run, need_value = self._plan()
            # Only the hits whose values the run uses are verified, deserialized and copied
            # into its state; the others feed nothing but other hits, and a resume finds them
            # in the cache again. A used hit that is refused becomes a miss: plan again.
            used = {}
            for key, payload in found.items():
                indexes = wanted[key]
                if need_value[indexes[0]] or (len(indexes) > 1 and any(need_value[i] for i in indexes)):
                    used[key] = payload
            for key in used:
                del found[key]  # what is left in `found` is the unused hits
            opened = self._verified(used, wanted)
            hits.update(opened)
            if len(opened) == sum(len(wanted[key]) for key in used):
                break
            for key in used:
                if wanted[key][0] not in opened:
                    for index in wanted[key]:
                        self.status[index] = PENDING
        self._load_stored(resumed, need_value)
        unused = {index: len(payload) for key, payload in found.items() for index in wanted[key]}
        self._record_cache_hits(hits, unused)
        for index in resumed:
            self.counts["resumed"] += 1
            self._emit_skipped(index, "resumed")
        status = self.status
        for index in _positions(status, PENDING):
            if not must_run[index]:
                status[index] = SKIPPED
                self.counts["skipped"] += 1
                self._emit_skipped(index, "not needed")
        return must_run

    def _record_json(self) -> dict[str, str]:
        """The task records as JSON strings (built by hand: json.dumps per task costs more than the task)."""
        import json

        wall, perf = self._clock
        names: dict[int, str] = {}
        stamps: dict[int, str] = {}
        out: dict[str, str] = {}
        for index, (status, duration, size, text, at) in self.records.items():  # type: ignore[union-attr]
            millis = int((wall + at - perf) * 1000)
            finished = stamps.get(millis)
            if finished is None:
                finished = stamps[millis] = json.dumps(_stamp(millis / 1000))
            task = self.nodes[index].task
            name = names.get(id(task))
            if name is None:
                name = names[id(task)] = json.dumps(task.name)
            extra = f', "size": {size}' if size is not None else ""
            if text is not None:
                extra += f', "{"reason" if status == "skipped" else "error"}": {json.dumps(text)}'
            out[self.nodes[index].id] = (
                f'{{"task": {name}, "status": "{status}", "duration": {duration:.6f}{extra}, "finished": {finished}}}'
            )
        return out

    def _finish(self) -> RunReport:
        if self.skipped:
            self.state.mark_skipped(self.skipped)
            if self.records is not None:
                for node in self.nodes:
                    if node.id in self.skipped:
                        self.records[node.index] = ("skipped", 0.0, None, self.skipped[node.id], time.perf_counter())
        if self.records:
            self.state.put_task_records(self._record_json())
        status = "failed" if self.failures else "succeeded"
        end_info = {"status": status, "failed_task": "", "error": ""}  # clears an earlier attempt's failure
        end_info.update({f"count_{name}": str(value) for name, value in self.counts.items()})
        error = None
        failed_task = None
        if self.failures:
            index, cause = self.failures[0]
            failed_task = self.nodes[index].task.name
            error = TaskFailed(failed_task, self.nodes[index].id, self.run_id, cause)
            error.__cause__ = cause
            end_info["failed_task"] = failed_task
            end_info["error"] = str(error)
        self.state.set_run_info(end_info)
        if self.events:
            self.events.hook.cascade_run_finished(
                run_id=self.run_id,
                status=status,
                counts=dict(self.counts),
                duration=time.perf_counter() - self._clock[1],
            )
        log.info(
            "run %s %s: %s",
            self.run_id,
            status,
            ", ".join(f"{value} {name}" for name, value in self.counts.items() if value and name != "total"),
        )
        value = None if error else shape_result(self.graph.target_shape, self.results, self.graph)
        return RunReport(self.run_id, status, dict(self.counts), 0.0, value, error, failed_task, dict(self.skipped))

    # -- planning ------------------------------------------------------------

    def _plan(self) -> tuple[bytearray, bytearray]:
        """Which nodes must run, and which stored values must be loaded, to produce the targets."""
        nodes, status = self.nodes, self.status
        n = len(nodes)
        must_run = bytearray(n)
        need_value = bytearray(n)
        wanted = bytearray(n)
        for index in self.graph.targets:
            wanted[index] = 1
        index = n
        while (index := wanted.rfind(1, 0, index)) >= 0:  # wanted nodes in reverse topological order
            if status[index] == DONE:
                need_value[index] = 1
                continue
            must_run[index] = 1
            for up in nodes[index].upstream:
                wanted[up] = 1
        return must_run, need_value

    def _load_stored(self, resumed: list[int], need_value: bytearray) -> None:
        wanted = [i for i in resumed if need_value[i]]
        if not wanted:
            return
        ids = {self.nodes[i].id: i for i in wanted}
        payloads = self.state.get_results(list(ids))
        for node_id, index in ids.items():
            payload = payloads.get(node_id)
            key = state_key(self.run_id, node_id)
            if payload is None:
                raise IntegrityError(
                    f"stored result {key!r} disappeared while the run resumed; rerun to recompute it", key=key
                )
            self.results[index] = self.codec.loads(key, payload)

    # -- caching ---------------------------------------------------------------

    def _cache_key(self, index: int, tokens: Any) -> str:
        """``<task name>:<digest>`` from the task's policy; ``tokens[i]`` stands for upstream node ``i``."""
        node = self.nodes[index]
        task = node.task
        try:
            inputs = (
                node.inputs
                if node.inputs is not None
                else encode_inputs(node.lazy, self.graph, self.graph.params, tokens)
            )
        except UnhashableInput as exc:
            argument = _find_unhashable_argument(node.lazy, self.graph, self.graph.params, tokens)
            raise HashingError(
                f"task {task.name!r}: argument {argument!r} cannot be hashed for its cache key ({exc}); "
                "pass a picklable value, give the type a __cascade_token__ method, or turn caching off for this task",
                task=task.name,
                argument=argument,
            ) from None
        return self._key_maker(task)(inputs)

    def _key_maker(self, task: Any) -> Callable[[bytes], str]:
        maker = self._key_makers.get(task)
        if maker is None:
            maker = self._key_makers[task] = key_maker(task, self.run_id)
        return maker

    def _token(self, index: int) -> str | None:
        """What an upstream contributes to a downstream cache key: its own key, or its value's hash."""
        key = self.keys[index]
        if key is not None:
            return key
        value = self.results[index]
        if value is _MISSING:
            return None
        try:
            return digest(encode(value))
        except UnhashableInput:
            return None

    def _prefetch_cache(self) -> tuple[dict[str, bytes], dict[str, list[int]]]:
        """Compute every cache key that needs no computed value, and fetch them all at once.

        Returns the payloads found (not verified yet) and the nodes of each key; the nodes
        of a found key are marked done.
        """
        status = self.status
        wanted: dict[str, list[int]] = {}
        with collection_paused():
            self._compute_keys(wanted)
        if not wanted:
            return {}, wanted
        found = self.cache.get_many(list(wanted))
        for key in found:
            for index in wanted[key]:
                status[index] = DONE
        return found, wanted

    def _compute_keys(self, wanted: dict[str, list[int]]) -> None:
        """Fill ``self.keys`` for every node whose key needs no computed value; ``wanted``: key -> pending nodes."""
        nodes, keys, status, looked_up = self.nodes, self.keys, self.status, self.looked_up
        for node in nodes:
            task = node.task
            if task.cache_policy is None:
                continue
            index = node.index
            if node.inputs is not None:  # no upstream: the inputs were encoded with the node id
                key = self._key_maker(task)(node.inputs)
            elif all(keys[dep] is not None for dep in node.data_deps):
                key = self._cache_key(index, keys)  # each upstream enters by its own cache key
            else:
                continue
            keys[index] = key
            if status[index] == PENDING:
                found = wanted.get(key)
                if found is None:
                    wanted[key] = [index]
                else:
                    found.append(index)
                looked_up[index] = 1

    def _verified(
        self, found: Mapping[str, bytes], wanted: Mapping[str, list[int]]
    ) -> dict[int, tuple[bytes, bytes, Any]]:
        """Node index -> (serializer code, body, value) of every cache entry that passes its check and loads.

        A refused entry (corrupt, tampered, or a value that no longer deserializes: its class
        was renamed, say) is a miss, logged once per run: the task runs again and overwrites it.
        """
        codec = self.cache_codec
        opened, errors = codec.open_many(cache_storage_key(""), found)
        hits: dict[int, tuple[bytes, bytes, Any]] = {}
        for key, (code, body) in opened.items():
            indexes = wanted[key]
            try:
                for index in indexes:  # each node its own copy of the value, as when it runs
                    hits[index] = (code, body, codec.deserialize(cache_storage_key(key), code, body))
            except IntegrityError as exc:
                for index in indexes:
                    hits.pop(index, None)
                errors.append(exc)
        for error in errors:
            if error.key not in self._refused:  # a miss is looked up again under its cache lock
                self._refused.add(error.key)
                log.warning("ignoring cache entry: %s; the task runs again and overwrites it", error)
        return hits

    def _record_cache_hits(
        self, used: dict[int, tuple[bytes, bytes, Any]], unused: dict[int, int] | None = None
    ) -> None:
        """Count and record cache hits; copy the ones the run uses into its state.

        ``used``: node index -> (serializer code, body, value), verified and deserialized.
        ``unused``: node index -> payload size of hits whose values nothing in this run reads
        (so never verified).
        """
        unused = unused or {}
        if not used and not unused:
            return
        nodes, results = self.nodes, self.results
        for index, entry in used.items():
            results[index] = entry[2]
        self.counts["cached"] += len(used) + len(unused)
        if self.records is not None:
            now = time.perf_counter()
            for index, (_, body, _) in used.items():
                self.records[index] = ("cached", 0.0, len(body), None, now)
            for index, size in unused.items():
                self.records[index] = ("cached", 0.0, size, None, now)
        if used:
            bodies = {nodes[index].id: (code, body) for index, (code, body, _) in used.items()}
            self.state.put_results(self.codec.seal_many(self._state_prefix, bodies))
        if self.events or self.debug:
            for index in itertools.chain(used, unused):
                node = self.nodes[index]
                if self.debug:
                    log.debug("task %s [%s] served from cache", node.task.name, node.id[:12])
                if self.events:
                    self.events.hook.cascade_task_finished(
                        run_id=self.run_id, task=node.task.name, node_id=node.id, duration=0.0, cached=True
                    )

    def _lookup_ready(self, ready: list[int]) -> list[int]:
        """Look up newly ready cacheable nodes in one batch; return the ones that must execute."""
        keys = self.keys
        wanted: dict[str, list[int]] = {}
        for index in ready:
            node = self.nodes[index]
            if node.task.cache_policy is None or self.looked_up[index]:
                continue
            tokens: dict[int, str | None] = {}
            for dep in node.data_deps:
                tokens[dep] = self._token(dep)
                if tokens[dep] is None:
                    argument = self.nodes[dep].task.name
                    raise HashingError(
                        f"task {node.task.name!r}: the result of {argument!r} cannot be hashed for its cache key; "
                        f"make {argument!r} return a picklable value or turn caching off for {node.task.name!r}",
                        task=node.task.name,
                        argument=argument,
                    )
            keys[index] = key = self._cache_key(index, tokens)
            self.looked_up[index] = 1
            wanted.setdefault(key, []).append(index)
        if not wanted:
            return ready
        hits = self._verified(self.cache.get_many(list(wanted)), wanted)
        if not hits:
            return ready
        for index in hits:
            self.status[index] = DONE
        self._record_cache_hits(hits)
        self._release([(index, None) for index in hits])
        return [index for index in ready if index not in hits]

    # -- scheduling ------------------------------------------------------------

    def _schedule(self, must_run: bytearray) -> None:
        nodes, status = self.nodes, self.status
        self.remaining = remaining = [0] * len(nodes)
        self.must_run = must_run
        ready: deque[int] = deque()
        for index in _positions(must_run):
            count = sum(1 for up in nodes[index].upstream if status[up] != DONE)
            remaining[index] = count
            if count == 0:
                ready.append(index)
        self.ready = ready
        self.running: set[int] = set()  # dispatched to a worker or the event loop, not yet completed
        self.inflight = 0
        self.completed: Any = None
        self._threads: list[threading.Thread] = []
        try:
            self._loop_until_done()
        except BackendUnavailableError as exc:
            self._note_unavailable(exc)  # before the lease keepers close
            raise
        finally:
            self._stop_workers()

    def _loop_until_done(self) -> None:
        ready, nodes = self.ready, self.nodes
        inline_only = self.workers == 1
        runnable: deque[int] = deque()
        # With node leases, claim no more nodes than this driver can start now, so that the
        # drivers sharing the run split its work: the others wait here, looked up, unclaimed.
        claimable: deque[int] | None = deque() if self.node_leases is not None else None
        backoff = Backoff()
        # Nothing to look up or claim: a lone ready sync node can go straight to execution.
        direct = (
            self.cache_locks is None and self.node_leases is None and not any(node.task.cache_policy for node in nodes)
        )
        while True:
            if self.cancel is not None and self.cancel.is_set():
                import asyncio

                raise asyncio.CancelledError("the awaiting arun() was cancelled")
            if direct and ready and not runnable and (inline_only or (self.inflight == 0 and len(ready) == 1)):
                index = ready[0]
                if not nodes[index].task.is_async:
                    ready.popleft()
                    self._run_inline(index)
                    continue
            if ready:
                candidates = list(ready)
                ready.clear()
                if claimable is None:
                    runnable.extend(self._claim(self._lookup_ready(candidates)))
                else:
                    claimable.extend(self._lookup_ready(candidates))
                continue
            if claimable and self.workers - self.inflight - len(runnable) > 0:
                free = self.workers - self.inflight - len(runnable)
                runnable.extend(self._claim([claimable.popleft() for _ in range(min(free, len(claimable)))]))
                continue
            if runnable:
                batch = list(runnable)
                runnable.clear()
                for index in batch:
                    # A lone ready sync task runs in this thread: a chain pays no thread hand-off.
                    if not nodes[index].task.is_async and (inline_only or (self.inflight == 0 and len(batch) == 1)):
                        self._started(index)
                        self._complete([self._call(index)])
                        continue
                    while self.inflight >= self.workers:
                        self._wait_for_completions()
                    self._dispatch(index)
                continue
            if self.waiting:
                # Nodes another driver is working on: poll for their results or their lease.
                if self.inflight:
                    self._wait_for_completions(timeout=backoff.next())
                else:
                    time.sleep(backoff.next())
                claimed = self._poll_waiting(None if claimable is None else self.workers - self.inflight)
                if claimed or ready:
                    backoff.reset()
                runnable.extend(claimed)
                continue
            if self.inflight == 0:
                return
            self._wait_for_completions()

    def _run_inline(self, index: int) -> None:
        """Run one sync node in this thread and store it; the fast path of a chain.

        Anything unusual (events, debug logging, retries, a cache key, a failure, an oversized
        or unpicklable result) goes through the general path: _call, then _complete.
        """
        node = self.nodes[index]
        task = node.task
        if self.events or self.debug or task.retries or self.keys[index] is not None:
            if self.events or self.debug:
                self._started(index)
            self._complete([self._call(index)])
            return
        perf_counter = time.perf_counter
        started = perf_counter()
        lazy = node.lazy
        try:
            args, kwargs = self._arguments(index) if lazy.deps or lazy.has_params else (lazy.args, lazy.kwargs)
            value = task.fn(*args, **kwargs)
        except BaseException as exc:
            self._complete([(index, False, exc, None, perf_counter() - started)])
            return
        codec = self.codec
        try:
            body = codec.serialize(value)
        except SerializationError:
            body = None
        if body is None or type(value) is LazyResult or (self.max_payload is not None and len(body) > self.max_payload):
            self._complete([self._encoded(index, value, started)])  # builds the right error
            return
        duration = perf_counter() - started
        self.results[index] = value
        status = self.status
        status[index] = DONE
        self.counts["executed"] += 1
        if self.records is not None:
            self.records[index] = ("done", duration, len(body), None, perf_counter())
        node_id = node.id
        self.state.put_results({node_id: codec.seal(self._state_prefix + node_id, codec._code, body)})
        must_run, remaining, ready = self.must_run, self.remaining, self.ready
        for down in node.downstream:
            if must_run[down]:
                remaining[down] -= 1
                if remaining[down] == 0 and status[down] == PENDING:
                    ready.append(down)

    def _dispatch(self, index: int) -> None:
        import queue

        if self.completed is None:
            self.completed = queue.SimpleQueue()
            self.work: Any = queue.SimpleQueue()
        self._started(index)
        self.running.add(index)
        self.inflight += 1
        if self.nodes[index].task.is_async:
            import asyncio

            future = asyncio.run_coroutine_threadsafe(self._call_async(index), self._event_loop())
            completed = self.completed

            def report(done: Any, index: int = index) -> None:
                completed.put(_outcome_of(done, index))

            future.add_done_callback(report)
            return
        if len(self._threads) < min(self.workers, self.inflight):
            thread = threading.Thread(target=self._worker, name=f"cascade-worker-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        self.work.put(index)

    def _worker(self) -> None:
        work, completed = self.work, self.completed
        while True:
            index = work.get()
            if index == _STOP:
                return
            try:
                outcome = self._call(index)
            except BaseException as exc:  # never leave the driver waiting for this node
                outcome = (index, False, exc, None, 0.0)
            completed.put(outcome)

    def _stop_workers(self) -> None:
        # A driver that exits (Ctrl-C, a cancelled arun, an error) releases everything it holds, so
        # that a resume starts at once; only a driver that dies leaves its leases to expire.
        if self.node_leases is not None:
            self.node_leases.close()
        if self.cache_locks is not None:
            self.cache_locks.close()
        for _ in self._threads:
            self.work.put(_STOP)
        if self._own_loop is not None:
            import asyncio

            loop, thread = self._own_loop
            try:  # cancel what is still pending, so that its cleanup runs
                asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(timeout=5)
            except Exception:
                pass
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()

    def _event_loop(self) -> Any:
        if self.loop is not None:
            return self.loop
        if self._own_loop is None:
            import asyncio

            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="cascade-event-loop", daemon=True)
            thread.start()
            self._own_loop = (loop, thread)
        return self._own_loop[0]

    def _wait_for_completions(self, timeout: float | None = None) -> None:
        completed = self.completed
        if timeout is None and self.cancel is not None:
            timeout = 0.1  # wake up now and then to notice a cancelled arun()
        try:
            batch = [completed.get(timeout=timeout)]
        except Exception:  # queue.Empty after the timeout
            return
        while True:
            try:
                batch.append(completed.get_nowait())
            except Exception:  # queue.Empty
                break
        self.inflight -= len(batch)
        self._complete(batch)

    # -- leases: one driver per run unless shared, one execution per node, per cache entry ----

    def _init_leases(self, engine: Engine) -> None:
        from ._errors import BackendError
        from ._leases import LeaseKeeper, RunLease, new_owner, supports_leases
        from ._protocols import LEASE_METHODS

        owner = new_owner()
        self.lease_ttl = engine.lease_ttl
        if not supports_leases(self.state):
            if engine.leases:
                raise BackendError(
                    f"leases=True needs a state backend with the Leases capability ({', '.join(LEASE_METHODS)}), "
                    f"which {self.state_label} lacks: use one that has it (sqlite, redis) or drop leases=True"
                )
            self.run_lease: RunLease | None = None  # the engine cannot know of other drivers (docs/backends.md)
        else:
            self.run_lease = RunLease(self.state, owner, engine.lease_ttl, engine.leases, self._heartbeat)
        self.node_leases = LeaseKeeper(self.state, owner, engine.lease_ttl, "node") if engine.leases else None
        self.cache_locks = (
            LeaseKeeper(self.cache, owner, engine.lease_ttl, "cache")
            if supports_leases(self.cache) and any(n.task.cache_lock and n.task.cache_policy for n in self.nodes)
            else None
        )
        self.waiting: dict[int, str] = {}  # node index -> "node" (another driver) or "cache" (another run)

    def _hold_run(self) -> dict[str, str]:
        """Claim the run lease, or raise RunInUseError naming the holder; return the run info naming this driver."""
        import socket

        from ._leases import refusal, release_leftovers

        started = time.time()
        info = {"driver": f"host {socket.gethostname()} pid {os.getpid()}", "driver_started": _stamp(started)}
        if self.run_lease is None:
            return info
        leftovers = _UNRELEASED.pop((self.state_label, self.run_id), None)
        if leftovers:
            release_leftovers(self.state, leftovers)
        holder = self.run_lease.acquire()
        if holder is not None:
            lease, self.run_lease = self.run_lease, None
            lease.close()
            raise refusal(self.run_id, self.state.get_run_info(), lease.shared, holder)
        info["lease_expires"] = _stamp(time.time() + self.lease_ttl)  # no sooner than the store's expiry
        return info

    def _heartbeat(self, expires: float) -> None:
        """After each renewal of the run lease: say until when it holds (`cascade runs` tells a dead driver by it)."""
        self.state.set_run_info({"lease_expires": _stamp(expires)})

    def release_run(self) -> None:
        if self.run_lease is not None:
            self.run_lease.close()
            if self.run_lease.unreleased:  # the store failed: the next driver of this run here frees them
                _UNRELEASED[(self.state_label, self.run_id)] = self.run_lease.unreleased

    def _claim(self, batch: list[int]) -> list[int]:
        """The nodes of ``batch`` this driver may run now; the others wait for whoever holds them."""
        if self.node_leases is not None and batch:
            ids = {self.nodes[index].id: index for index in batch}
            held = self.node_leases.acquire(ids)
            for node_id, index in ids.items():
                if node_id not in held:
                    self.waiting[index] = "node"
            # Another driver may have finished a node between our last read and the claim.
            done = self._take_stored({node_id: ids[node_id] for node_id in held})
            if done:
                self.node_leases.release([self.nodes[index].id for index in done])
            batch = [index for index in batch if index not in self.waiting and index not in done]
        if self.cache_locks is not None and batch:
            keyed: dict[str, list[int]] = {}
            for index in batch:
                key = self.keys[index]
                if key is not None and self.nodes[index].task.cache_lock:
                    keyed.setdefault(key, []).append(index)
            if keyed:
                held = self.cache_locks.acquire(keyed)
                for key, indexes in keyed.items():
                    # Nodes of this run sharing a key: the first computes it, the others wait for it.
                    waiting = indexes if key not in held else indexes[1:]
                    for index in waiting:
                        self.waiting[index] = "cache"
                # The entry may have been written between our lookup and the lock.
                hits = self._take_cached({key: keyed[key] for key in held})
                if hits:
                    self.cache_locks.release([key for key in held if keyed[key][0] in hits])
                    for index in hits:
                        self.waiting.pop(index, None)
                batch = [index for index in batch if index not in self.waiting and index not in hits]
        return batch

    def _take_stored(self, ids: dict[str, int]) -> list[int]:
        """Load results another driver stored for these nodes; mark them done and release downstream."""
        if not ids:
            return []
        found = self.state.get_results(list(ids))
        finished = []
        for node_id, payload in found.items():
            index = ids[node_id]
            self.results[index] = self.codec.loads(state_key(self.run_id, node_id), payload)
            self.status[index] = DONE
            self.counts["by_other_drivers"] += 1
            self._emit_skipped(index, "done by another driver")
            finished.append(index)
        self._release([(index, None) for index in finished])
        return finished

    def _take_cached(self, keys: dict[str, list[int]]) -> list[int]:
        """Record cache entries that appeared for these nodes; mark them done and release downstream."""
        if not keys:
            return []
        hits = self._verified(self.cache.get_many(list(keys)), keys)
        for index in hits:
            self.status[index] = DONE
        if hits:
            self._record_cache_hits(hits)
            if self.node_leases is not None:  # served from the cache: the node's claim is done
                self.node_leases.release([self.nodes[index].id for index in hits])
            self._release([(index, None) for index in hits])
        return list(hits)

    def _poll_waiting(self, free: int | None = None) -> list[int]:
        """Take results that appeared for waiting nodes; claim (at most ``free`` of) the ones whose holder went away."""
        by_node = [index for index, kind in self.waiting.items() if kind == "node"]
        by_cache = [index for index, kind in self.waiting.items() if kind == "cache"]
        retry: list[int] = []
        if by_node:
            for index in self._take_stored({self.nodes[index].id: index for index in by_node}):
                del self.waiting[index]
            retry += [index for index in by_node if index in self.waiting]
        if by_cache:
            keyed: dict[str, list[int]] = {}
            for index in by_cache:
                keyed.setdefault(self.keys[index], []).append(index)  # type: ignore[arg-type]
            for index in self._take_cached(keyed):
                del self.waiting[index]
            retry += [index for index in by_cache if index in self.waiting]
        if free is not None:
            retry = retry[: max(free, 0)]  # the others stay waiting until this driver can start them
        if not retry:
            return []
        for index in retry:
            del self.waiting[index]
        return self._claim(retry)

    # -- executing one node --------------------------------------------------------

    def _arguments(self, index: int) -> tuple[tuple, dict]:
        lazy = self.nodes[index].lazy
        if not lazy.deps and not lazy.has_params:
            return lazy.args, lazy.kwargs
        graph, results, params = self.graph, self.results, self.graph.params
        index_of = graph.index_of
        args = tuple(
            [
                results[index_of[id(arg)]] if type(arg) is LazyResult else substitute(arg, results, graph, params)
                for arg in lazy.args
            ]
        )
        kwargs = substitute(lazy.kwargs, results, graph, params) if lazy.kwargs else lazy.kwargs
        return args, kwargs

    def _call(self, index: int) -> tuple:
        task = self.nodes[index].task
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                args, kwargs = self._arguments(index)
                value = task.fn(*args, **kwargs)
                break
            except Exception as exc:
                if attempt >= task.retries:
                    return (index, False, exc, None, time.perf_counter() - started)
                try:
                    delay = self._retry_delay(index, attempt, exc)
                except Exception as hook_error:  # an observer failed: report it as this task's failure
                    return (index, False, hook_error, None, time.perf_counter() - started)
                attempt += 1
                if delay:
                    time.sleep(delay)
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop the run
                return (index, False, exc, None, time.perf_counter() - started)
        return self._encoded(index, value, started)

    async def _call_async(self, index: int) -> tuple:
        """Run an async node with its retries; the outcome reaches the driver through the future
        (see _dispatch), so a node cancelled before it even starts is reported too."""
        import asyncio

        task = self.nodes[index].task
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                args, kwargs = self._arguments(index)
                value = await task.fn(*args, **kwargs)
                break
            except Exception as exc:
                if attempt >= task.retries:
                    return (index, False, exc, None, time.perf_counter() - started)
                try:
                    delay = self._retry_delay(index, attempt, exc)
                except Exception as hook_error:
                    return (index, False, hook_error, None, time.perf_counter() - started)
                attempt += 1
                if delay:
                    await asyncio.sleep(delay)
            except (KeyboardInterrupt, SystemExit) as exc:  # asyncio would re-raise them in the loop's thread
                return (index, False, exc, None, time.perf_counter() - started)
        return self._encoded(index, value, started)

    def _retry_delay(self, index: int, attempt: int, exc: BaseException) -> float:
        node = self.nodes[index]
        task = node.task
        delay = task.retry_delay * task.retry_backoff**attempt
        log.warning(
            "task %s failed (attempt %d of %d): %s: %s; retrying in %.2fs",
            task.name,
            attempt + 1,
            task.retries + 1,
            type(exc).__name__,
            _one_line(exc),
            delay,
        )
        if self.events:
            self.events.hook.cascade_task_retrying(
                run_id=self.run_id, task=task.name, node_id=node.id, attempt=attempt + 1, error=exc, delay=delay
            )
        return delay

    def _encoded(self, index: int, value: Any, started: float) -> tuple:
        task = self.nodes[index].task
        error: CascadeError
        if type(value) is LazyResult:
            error = DefinitionError(
                f"task {task.name!r} returned a lazy result ({value.task.name}) instead of a value: "
                "pass it to the task as an argument, or call cs.run() on it inside the task"
            )
            return (index, False, error, None, time.perf_counter() - started)
        try:
            body = self.codec.serialize(value)
        except SerializationError as exc:
            error = SerializationError(f"result of task {task.name!r} cannot be stored: {exc}")
            error.__cause__ = exc.__cause__
            return (index, False, error, None, time.perf_counter() - started)
        if self.max_payload is not None and len(body) > self.max_payload:
            error = SerializationError(
                f"result of task {task.name!r} is {len(body)} bytes, over the state backend's limit of "
                f"{self.max_payload} bytes: return a smaller value or {_raise_limit(self.state)}"
            )
            return (index, False, error, None, time.perf_counter() - started)
        return (index, True, value, body, time.perf_counter() - started)

    # -- completions -------------------------------------------------------------

    def _started(self, index: int) -> None:
        if self.debug:
            node = self.nodes[index]
            log.debug("task %s [%s] started", node.task.name, node.id[:12])
        if self.events:
            node = self.nodes[index]
            self.events.hook.cascade_task_started(run_id=self.run_id, task=node.task.name, node_id=node.id)

    def _complete(self, outcomes: list[tuple]) -> None:
        """Store a batch of finished nodes in one write, then release their downstream."""
        nodes, results, status = self.nodes, self.results, self.status
        to_store: dict[str, bytes] = {}
        to_cache: dict[float | None, dict[str, bytes]] = {}
        released: list[tuple[int, Any]] = []
        fatal: BaseException | None = None
        for index, ok, value, body, duration in outcomes:
            self.running.discard(index)
            node = nodes[index]
            if not ok:
                stops_run = self._stops_run(value)
                if stops_run:
                    fatal = fatal or value
                self._fail(index, value, stops_run)
                if self.records is not None:
                    self.records[index] = (
                        "failed",
                        duration,
                        None,
                        f"{type(value).__name__}: {_one_line(value)}",
                        time.perf_counter(),
                    )
                continue
            results[index] = value
            status[index] = DONE
            self.counts["executed"] += 1
            if self.records is not None:
                self.records[index] = ("done", duration, len(body), None, time.perf_counter())
            to_store[node.id] = self.codec.seal(state_key(self.run_id, node.id), self.codec._code, body)
            key = self.keys[index]
            if key is not None:
                cache_body = body if self.cache_codec.serializer == self.codec.serializer else None
                try:
                    if cache_body is None:
                        cache_body = self.cache_codec.serialize(value)
                    if self.cache_max_payload is not None and len(cache_body) > self.cache_max_payload:
                        raise SerializationError(
                            f"{len(cache_body)} bytes is over the cache's limit of {self.cache_max_payload} bytes "
                            f"({_raise_limit(self.cache)} to cache it)"
                        )
                    payload = self.cache_codec.seal(cache_storage_key(key), self.cache_codec._code, cache_body)
                    to_cache.setdefault(node.task.cache_ttl, {})[key] = payload
                except SerializationError as exc:
                    log.warning("result of task %s not cached: %s", node.task.name, exc)
            released.append((index, duration))
        if to_store:
            self.state.put_results(to_store)
        for ttl, items in to_cache.items():
            self.cache.set_many(items, ttl)
        if self.node_leases is not None:
            self.node_leases.release([nodes[outcome[0]].id for outcome in outcomes])
        if self.cache_locks is not None:
            self.cache_locks.release([key for key in (self.keys[outcome[0]] for outcome in outcomes) if key])
        if fatal is not None:
            raise fatal
        if released:
            self._release(released)

    def _release(self, finished: list[tuple[int, Any]]) -> None:
        nodes, remaining, must_run, ready = self.nodes, self.remaining, self.must_run, self.ready
        events, debug = self.events, self.debug
        for index, duration in finished:
            node = nodes[index]
            if duration is not None and (events or debug):
                if debug:
                    log.debug("task %s [%s] finished in %.6fs", node.task.name, node.id[:12], duration)
                if events:
                    events.hook.cascade_task_finished(
                        run_id=self.run_id, task=node.task.name, node_id=node.id, duration=duration, cached=False
                    )
            for down in node.downstream:
                if must_run[down]:
                    remaining[down] -= 1
                    if remaining[down] == 0 and self.status[down] == PENDING:
                        ready.append(down)

    def _stops_run(self, error: BaseException) -> bool:
        """Ctrl-C, SystemExit and a cancelled arun() stop the run; a task's own exceptions, and
        a coroutine cancelled by other code, fail only that task."""
        if isinstance(error, Exception):
            return False
        import asyncio

        if isinstance(error, asyncio.CancelledError):
            return self.cancel is not None and self.cancel.is_set()
        return True

    def _fail(self, index: int, error: BaseException, stops_run: bool = False) -> None:
        node = self.nodes[index]
        self.status[index] = FAILED
        self.counts["failed"] += 1
        self.failures.append((index, error))
        if stops_run:  # interrupted: the run stops, the task did not fail
            return
        log.error(
            "task %s failed in run %s: %s: %s",
            node.task.name,
            self.run_id,
            type(error).__name__,
            _one_line(error),
            extra={"cascade_event": "task_failed"},
        )
        if self.events:
            self.events.hook.cascade_task_failed(run_id=self.run_id, task=node.task.name, node_id=node.id, error=error)
        reason = f"upstream failed: {node.task.name}"
        stack = list(node.downstream)
        while stack:
            down = stack.pop()
            if self.status[down] != PENDING or not self.must_run[down]:
                continue
            self.status[down] = SKIPPED
            self.counts["skipped"] += 1
            self.skipped[self.nodes[down].id] = reason
            self._emit_skipped(down, reason)
            stack.extend(self.nodes[down].downstream)

    def _emit_skipped(self, index: int, reason: str) -> None:
        if self.events:
            node = self.nodes[index]
            self.events.hook.cascade_task_skipped(
                run_id=self.run_id, task=node.task.name, node_id=node.id, reason=reason
            )


def _raise_limit(backend: Any) -> str:
    """How to let ``backend`` store more: raise the option it names as ``max_payload_option``."""
    option = getattr(backend, "max_payload_option", None)
    return f"raise the backend's {option}" if isinstance(option, str) and option else "use a backend that allows more"


async def _cancel_pending() -> None:
    import asyncio

    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _outcome_of(future: Any, index: int) -> tuple:
    """The outcome of an async node from its concurrent.futures.Future."""
    if future.cancelled():
        import asyncio

        return (index, False, asyncio.CancelledError(), None, 0.0)
    error = future.exception()
    if error is not None:
        return (index, False, error, None, 0.0)
    return future.result()


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message, credentials masked; never raises (stored as error text)."""
    from ._masking import first_line

    return first_line(exc)


def _find_unhashable_argument(lazy: Any, graph: Graph, params: Mapping[str, Any], tokens: Any) -> str:
    """Name the argument of ``lazy`` that cannot be encoded (for the error message)."""
    import inspect

    from ._graph import _encode_arg

    try:
        bound = inspect.signature(lazy.task.fn).bind_partial(*lazy.args, **lazy.kwargs).arguments
    except (TypeError, ValueError):
        bound = {f"#{i}": value for i, value in enumerate(lazy.args)} | dict(lazy.kwargs)
    for name, value in bound.items():
        try:
            _encode_arg(value, graph, params, tokens)
        except UnhashableInput:
            return name
    return "?"


def run(
    target: Any,
    params: Mapping[str, Any] | None = None,
    *,
    state_backend: Any = None,
    cache_backend: Any = None,
    run_id: str | None = None,
    max_workers: int | None = None,
    observers: Iterable[object] = (),
    leases: bool = False,
    lease_ttl: float = 30.0,
) -> Any:
    """Run ``target`` (a lazy result, or a list/dict of them) and return its value.

    ``state_backend``: a URI (``"sqlite:///cascade.db"``), a factory ``run_id -> StateBackend`` or a
    StateBackend; ``cache_backend``: a URI or a CacheBackend. Both default to ``memory://``.
    Rerunning with the same ``run_id`` and a persistent state backend resumes. One driver at a
    time holds a run id; with ``leases=True`` several drivers share it, claiming each node before
    running it, so each task runs once. A dead driver's claims expire after ``lease_ttl`` seconds.
    """
    engine = Engine(
        state_backend,
        cache_backend,
        max_workers=max_workers,
        observers=observers,
        leases=leases,
        lease_ttl=lease_ttl,
    )
    return engine.run(target, params, run_id=run_id)


async def arun(
    target: Any,
    params: Mapping[str, Any] | None = None,
    *,
    state_backend: Any = None,
    cache_backend: Any = None,
    run_id: str | None = None,
    max_workers: int | None = None,
    observers: Iterable[object] = (),
    leases: bool = False,
    lease_ttl: float = 30.0,
) -> Any:
    """The async twin of :func:`run`."""
    engine = Engine(
        state_backend,
        cache_backend,
        max_workers=max_workers,
        observers=observers,
        leases=leases,
        lease_ttl=lease_ttl,
    )
    return await engine.arun(target, params, run_id=run_id)


__all__ = ["Engine", "RunReport", "arun", "run", "CascadeError"]
