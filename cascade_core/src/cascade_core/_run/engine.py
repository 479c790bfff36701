"""The engine: ``run``, ``arun`` and ``Engine``; one run from graph to report.

Data flow of one run (docs/architecture.md draws it)::

    build_graph (_graph) ─▶ plan (_plan, _cache_lookup): what is stored, which cache hits
    are used, what must run ─▶ scheduler (_scheduler, _claims): ready nodes, claims,
    retries ─▶ executor (executors/): runs each TaskCall (_call) ─▶ scheduler: stores each
    batch of outcomes in the backends, then releases downstream ─▶ report (_records)

A node's result is stored before any node that depends on it starts, so a run that
crashes at any point resumes without redoing finished work.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec

from .._build.gc_pause import PausedCollection
from .._build.graph import build_graph
from .._build.values import shape_result
from .._errors import DefinitionError, ParamError, TaskFailed
from .._masking import describe
from .._plugins.events import make_events
from .._plugins.resolve import check_lease_ttl, check_run_id, check_workers, new_run_id
from .._store.blob_refs import BlobError
from .._store.codec import keys_from_env
from .._store.leases import new_owner
from .._store.process import driver_name
from .admission import Gate, checked_totals
from .availability import Availability
from .cache_lookup import CacheLookup
from .context import MISSING, RunContext
from .inflight import Cancel
from .plan import prepare
from .records import RunRecords, log
from .resources import RunResources
from .run_hold import RunHold
from .scheduler import Scheduler

P = ParamSpec("P")


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


class Engine:
    """Runs graphs against a state backend (per run id), a shared cache backend and an executor.

    >>> engine = Engine("sqlite:///cascade.db", "sqlite:///cascade.db", executor="threads://")  # doctest: +SKIP
    >>> engine.run(total(numbers()), run_id="nightly")                                           # doctest: +SKIP
    """

    def __init__(
        self,
        state_backend_factory: Any = None,
        cache_backend: Any = None,
        *,
        executor: Any = None,
        max_workers: int | None = None,
        observers: Iterable[object] = (),
        secret_keys: list[bytes] | None = None,
        leases: bool = False,
        lease_ttl: float = 30.0,
        blob_store: Any = None,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        # What was passed, resolved once per run (_run/resources).
        self.state_arg = state_backend_factory
        self.blobs_arg = blob_store
        self.cache_arg = cache_backend
        self.executor_arg = executor
        self.max_workers = check_workers(max_workers)
        self.observers = list(observers)
        self._secret_keys = secret_keys
        if not isinstance(leases, bool):
            raise DefinitionError(f"leases must be True or False, got {leases!r}")
        self.leases = leases
        self.lease_ttl = check_lease_ttl(lease_ttl)
        self.resources = checked_totals(resources)  # the run's totals, for tasks' resources= (_run/admission)
        # The `cascade run` command that resumes a run (secrets masked), kept in its run info for
        # the HTML report; the CLI sets it, "" for a run started from Python.
        self.resume_command = ""

    def run(
        self,
        target: Any,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_workers: int | None = None,
    ) -> Any:
        """Run ``target`` and return its value; raise TaskFailed when a task failed."""
        return _value_of(self.execute(target, params, run_id=run_id, max_workers=max_workers))

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
        cancel = Cancel()
        try:
            report = await asyncio.to_thread(
                self.execute, target, params, run_id=run_id, max_workers=max_workers, loop=loop, cancel=cancel
            )
        except asyncio.CancelledError:
            cancel.set()  # wakes the scheduler: it submits nothing more, cancels what is in flight
            raise
        return _value_of(report)

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
        """Run ``target`` and return a :class:`RunReport` instead of raising on task failure.

        A task that failed because an upstream's blob was lost or corrupt where its worker read
        it (an executor given stored references, docs/blobs.md) makes the run resume once: the
        blob is gone by then, so the resume recomputes that upstream."""
        report = self._execute(target, params, run_id, max_workers, loop, cancel)
        if report.error is not None and isinstance(report.error.__cause__, BlobError):
            log.warning("%s; resuming run %s once to recompute it", report.error.__cause__, report.run_id)
            report = self._execute(target, params, report.run_id, max_workers, loop, cancel)
        return report

    def _execute(self, target: Any, params: Any, run_id: Any, max_workers: Any, loop: Any, cancel: Any) -> RunReport:
        started = time.perf_counter()
        if params is not None and not isinstance(params, Mapping):
            raise ParamError(f"params must be a dict of name -> value, got {type(params).__name__}")
        # The collector is paused while the engine alone works (graph, plan, a warm rerun's hits)
        # and resumed before any task runs; what the run allocated is freed before it resumes.
        with PausedCollection() as collection:
            graph = build_graph(target, params)
            workers = check_workers(max_workers) or self.max_workers
            with RunResources(self, workers, loop) as res:
                if run_id is None:
                    run_id = getattr(res.state_spec.instance, "run_id", None) or new_run_id()
                run_id = check_run_id(run_id)
                if res.state_spec.instance is not None and res.state_spec.instance.run_id != run_id:
                    raise DefinitionError(
                        f"run_id {run_id!r} differs from the state backend's run id "
                        f"{res.state_spec.instance.run_id!r}: pass a factory to bind other run ids"
                    )
                state = res.open_state(run_id)
                events = make_events(self.observers)
                ctx = RunContext(graph, run_id, state, res.cache_spec.backend, self._keys(), cancel, res.blobs, events)
                run = _Run(self, ctx, res, collection)
                try:
                    report = run.execute()
                finally:
                    run.hold.release()  # on every way out; only a driver that dies leaves its lease to expire
                    ctx.results.clear()  # drop the executor's handles now: Dask frees their values on the cluster
            del graph, ctx, run
        report.duration_s = time.perf_counter() - started
        return report

    def _keys(self) -> list[bytes]:
        return self._secret_keys if self._secret_keys is not None else keys_from_env()


class _Run:
    """One execution of one graph: run info, plan, schedule, finish."""

    def __init__(self, engine: Engine, ctx: RunContext, res: RunResources, collection: PausedCollection) -> None:
        self.ctx = ctx
        self.res = res
        self.collection = collection
        self.resume_command = engine.resume_command
        self.records = RunRecords(ctx)
        caps = res.executor_caps
        self.lookup = CacheLookup(ctx, self.records, gather=caps.gather, hold=caps.hold_reference)
        state_label, cache_label = res.state_spec.label, res.cache_spec.label
        self.availability = availability = Availability(ctx.state, ctx.cache, same_store=state_label == cache_label)
        owner = new_owner()
        # The lease keepers call their backends from the heartbeat and on the way out: once a
        # backend is down they must fail at once too, so they get the backends guarded.
        guarded_state = availability.guard(ctx.state)
        spec = res.state_spec
        self.gate = Gate.of(
            ctx, (spec.factory, spec.instance, ctx.state), spec.label, engine.resources, owner, engine.lease_ttl
        )
        self.hold = RunHold(guarded_state, state_label, ctx.run_id, owner, engine.lease_ttl, engine.leases)
        self.scheduler = Scheduler(
            ctx,
            self.records,
            self.lookup,
            res.executor_spec.executor,
            caps,
            self.availability,
            leases=engine.leases,
            lease_ttl=engine.lease_ttl,
            owner=owner,
            executor_label=res.executor_spec.label,
            guard=availability.guard,
            gate=self.gate,
        )

    def execute(self) -> RunReport:
        ctx = self.ctx
        state, nodes = ctx.state, ctx.nodes
        driver = self.hold.hold()  # first: a driver refused the run writes nothing
        stored = state.result_ids()
        # Backends stamp `created` and `updated` themselves (see docs/backends.md).
        state.set_run_info(
            {
                "status": "running",
                "tasks": str(len(nodes)),
                "target": ",".join(dict.fromkeys(nodes[i].task.name for i in ctx.graph.targets)),
                "resume_command": self.resume_command,
                **driver,
            }
        )
        self.records.run_started(len(stored), self.res.state_spec.label, self.res.cache_spec.label)
        try:
            must_run = prepare(ctx, self.records, self.lookup, stored)
            if self.gate is not None:
                self.gate.check(must_run)  # a limit nothing set, a resource the run lacks: fails here
            if 1 in must_run:  # tasks run from here on: their garbage is collected as usual
                self.collection.resume()
            self.scheduler.run(must_run, stored)
        except BaseException as exc:
            self._crashed(exc)
            raise
        return self._finish()

    def _crashed(self, exc: BaseException) -> None:
        """Ctrl-C, a cancelled arun, a bad input found while planning, or a store that went away:
        say so in the run's info, and keep what is known of its tasks, if the store still answers."""
        import asyncio

        interrupted = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
        self.availability.note(exc)
        if not self.availability.available(self.ctx.state):
            return  # its info says "running" until its run lease expires
        try:
            self.ctx.state.set_run_info({"status": "interrupted" if interrupted else "crashed", "error": describe(exc)})
            keeper = self.ctx.state_caps.task_records
            if self.records.records and keeper is not None:
                keeper.put_task_records(self.records.record_json())
        except Exception:  # the store may be the reason; the original error matters more
            pass

    def _finish(self) -> RunReport:
        ctx, records = self.ctx, self.records
        state, nodes = ctx.state, ctx.nodes
        if records.skipped:
            state.mark_skipped(records.skipped)
            if records.records is not None:
                for node in nodes:
                    if node.id in records.skipped:
                        records.record(node.index, "skipped", 0.0, None, records.skipped[node.id])
        keeper = ctx.state_caps.task_records
        if records.records and keeper is not None:
            keeper.put_task_records(records.record_json())
        values: list[Any] = []
        if not records.failures:
            try:
                values = self._target_values()
            except BlobError as lost:  # a target's blob was corrupt where its executor read it (deleted now)
                records.failures.append((ctx.graph.targets[0], lost))
        status = "failed" if records.failures else "succeeded"
        end_info = {"status": status, "failed_task": "", "error": ""}  # clears an earlier attempt's failure
        end_info["tasks"] = str(len(nodes))  # a graph that grew during the run (docs/concepts.md) has more
        end_info.update({f"count_{name}": str(value) for name, value in records.counts.items()})
        if self.gate is not None:  # one field per driver: drivers sharing a run do not overwrite each other's
            end_info.update({f"{field}@{driver_name()}": value for field, value in self.gate.info().items()})
        error = None
        failed_task = None
        if records.failures:
            index, cause = records.failures[0]
            failed_task = nodes[index].task.name
            error = TaskFailed(failed_task, nodes[index].id, ctx.run_id, cause)
            error.__cause__ = cause
            end_info["failed_task"] = failed_task
            end_info["error"] = str(error)
        state.set_run_info(end_info)
        records.run_finished(status)
        if not error and records.counts["skipped"]:  # a target skipped by run_if (or a router) is None
            values = [None if value is MISSING else value for value in values]
        value = None if error else shape_result(ctx.graph.target_shape, values, ctx.graph)
        return RunReport(
            ctx.run_id, status, dict(records.counts), 0.0, value, error, failed_task, dict(records.skipped)
        )

    def _target_values(self) -> list[Any]:
        """The run's results, with the targets' real values where the executor holds handles (Dask)."""
        results = self.ctx.results
        if self.lookup.gather is None:
            return results
        results = list(results)
        targets = list(dict.fromkeys(self.ctx.graph.targets))
        for index, value in zip(targets, self.lookup.gather([results[i] for i in targets])):
            results[index] = value
        return results


def _value_of(report: RunReport) -> Any:
    if report.error is not None:
        raise report.error
    return report.value


def run(
    target: Any,
    params: Mapping[str, Any] | None = None,
    *,
    state_backend: Any = None,
    cache_backend: Any = None,
    executor: Any = None,
    run_id: str | None = None,
    max_workers: int | None = None,
    observers: Iterable[object] = (),
    leases: bool = False,
    lease_ttl: float = 30.0,
    blob_store: Any = None,
    resources: Mapping[str, float] | None = None,
) -> Any:
    """Run ``target`` (a lazy result, or a list/dict of them) and return its value.

    ``state_backend``: a URI (``"sqlite:///cascade.db"``), a factory ``run_id -> StateBackend`` or a
    StateBackend; ``cache_backend``: a URI or a CacheBackend. Both default to ``memory://``.
    ``executor``: where tasks run, a URI (``"threads://?max_workers=8"``, the default;
    ``"inline://"``) or an executor object; ``max_workers=N`` is short for ``threads://?max_workers=N``.
    Rerunning with the same ``run_id`` and a persistent state backend resumes. One driver at a
    time holds a run id; with ``leases=True`` several drivers share it, claiming each node before
    running it, so each task runs once. A dead driver's claims expire after ``lease_ttl`` seconds.
    ``blob_store``: a URI (``"file:///blobs"``) storing results over 1 MiB once by content (docs/blobs.md).
    ``resources``: the run's totals (``{"gpu": 2}``); tasks' ``resources=`` never exceed them together.
    """
    return _engine_of(locals()).run(target, params, run_id=run_id)


def _engine_of(arguments: Mapping[str, Any]) -> Engine:
    """The Engine that ``run()``'s (or ``arun()``'s) arguments describe."""
    options = ("executor", "max_workers", "observers", "leases", "lease_ttl", "blob_store", "resources")
    return Engine(arguments["state_backend"], arguments["cache_backend"], **{n: arguments[n] for n in options})


def _async_twin(sync: Callable[P, Any]) -> Callable[P, Coroutine[Any, Any, Any]]:
    """The async twin of ``sync`` (``run``): its very parameters, awaiting ``Engine.arun`` instead."""

    async def twin(*args: P.args, **kwargs: P.kwargs) -> Any:
        import inspect

        bound = inspect.signature(sync).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        engine = _engine_of(arguments)
        return await engine.arun(arguments["target"], arguments["params"], run_id=arguments["run_id"])

    functools.update_wrapper(twin, sync)  # __wrapped__: inspect.signature(arun) is run's
    twin.__name__ = twin.__qualname__ = "arun"
    twin.__doc__ = "The async twin of :func:`run`: async tasks run on the caller's event loop."
    return twin


arun = _async_twin(run)


__all__ = ["Engine", "RunReport", "arun", "run"]
