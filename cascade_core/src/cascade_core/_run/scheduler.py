"""The scheduler of one run: ready nodes, claims, hand-off to the executor, completions.

Each completion batch is stored (one ``put_results``, one ``set_many`` per TTL) before any
downstream node is released, so a run that crashes at any point resumes without redoing
finished work. Retries are the scheduler's: a failed call goes back to the executor with
``attempt + 1`` after its delay, never retried inside the executor.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._build.dynamic import returns_graph
from .._build.values import call_arguments
from .._errors import BackendUnavailableError, SerializationError
from .._plugins.call import Outcome, ReturnedGraph, TaskCall, finish_call, run_call
from .._plugins.capabilities import ExecutorCapabilities
from .._plugins.executor import Executor
from .._store.leases import Backoff
from .admission import Gate, refuse_ungated
from .availability import Availability
from .cache_lookup import CacheLookup
from .claims import Claims
from .context import RunContext, code_of
from .expansion import Expansions
from .inflight import InFlight
from .records import RunRecords


class Scheduler:
    """Runs the nodes a plan says must run, on ``executor``, in dependency order."""

    def __init__(
        self,
        ctx: RunContext,
        records: RunRecords,
        lookup: CacheLookup,
        executor: Executor,
        caps: ExecutorCapabilities,
        availability: Availability,
        *,
        leases: bool = False,
        lease_ttl: float = 30.0,
        owner: str | None = None,
        executor_label: str = "",
        guard: Callable[[Any], Any] | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.ctx = ctx
        self.records = records
        self.lookup = lookup
        self.executor = executor
        self.in_driver = caps.in_driver
        self.gather = caps.gather  # the real values behind the executor's handles (Dask)
        self.availability = availability
        self.claims = Claims(
            ctx, records, lookup, self._release_indexes, leases=leases, lease_ttl=lease_ttl, owner=owner, guard=guard
        )
        self.ready: deque[int] = deque()
        self.runnable: deque[int] = deque()  # claimed, waiting for a free worker
        # With node leases, looked up but not claimed yet: a driver claims no more nodes than
        # it can start now, so that the drivers sharing a run split its work.
        self.claimable: deque[int] | None = deque() if self.claims.node_leases is not None else None
        self.inflight = InFlight(executor, executor_label, ctx.cancel, caps.outcome_timeout)
        self.handles = self.inflight.handles  # node index -> the executor's handle of its running call
        self.attempts: dict[int, int] = {}  # node index -> attempt number, for nodes being retried
        self.retries: list[tuple[float, int]] = []  # heap of (when, node index) waiting for a retry
        self.dynamic = Expansions(
            ctx,
            records,
            gather=caps.gather,
            hold=caps.hold_reference,
            complete=self._complete,
            fail=lambda index, error: self._fail(index, error, False, 0.0),
        )
        self.gate = gate  # limits and resources: asked before each attempt starts (_run/admission)

    # -- the loop ------------------------------------------------------------------

    def run(self, must_run: bytearray, stored: set[str] | None = None) -> None:
        """Run every node flagged in ``must_run`` (whose upstreams are done or will be); ``stored``:
        the node ids stored before the run (for the nodes a dynamic graph adds)."""
        self.dynamic.start(stored or set())
        self.ready.extend(self.ctx.table.plan(must_run))
        try:
            self._loop_until_done()
        except BaseException as exc:
            self.availability.note(exc)  # before the lease keepers close
            raise
        finally:
            self._stop()

    def _loop_until_done(self) -> None:
        nodes = self.ctx.nodes
        ready, runnable, claims, claimable = self.ready, self.runnable, self.claims, self.claimable
        executor = self.executor
        capacity = executor.max_workers
        local = self.in_driver
        inline_only = local and capacity == 1
        backoff = Backoff()
        # Nothing to look up or claim: a lone ready sync node can go straight to execution.
        direct = local and not claims.active and not any(node.task.cache_policy for node in nodes) and not self.gate
        dynamic = self.dynamic
        gate = self.gate
        while True:
            self._check_cancelled()
            if self.retries and self.retries[0][0] <= time.monotonic():
                while self.retries and self.retries[0][0] <= time.monotonic():
                    runnable.append(heapq.heappop(self.retries)[1])
            if direct and dynamic.active:
                direct = False  # a node that expands or joins goes through the general path
            if direct and ready and not runnable and (inline_only or (not self.handles and len(ready) == 1)):
                index = ready[0]
                if not nodes[index].task.is_async and index not in self.attempts:
                    ready.popleft()
                    self._run_inline(index)
                    continue
            if ready:
                candidates = list(ready)
                ready.clear()
                if dynamic.active:
                    candidates = dynamic.check_conditions(candidates)
                hits = self.lookup.lookup_ready(candidates)
                if hits:
                    self._release_indexes(hits)
                    taken = set(hits)
                    candidates = [index for index in candidates if index not in taken]
                if dynamic.active:
                    candidates, expanded = dynamic.take(candidates)
                    ready.extend(expanded)
                if claimable is None:
                    runnable.extend(claims.claim(candidates))
                else:
                    claimable.extend(candidates)
                continue
            # Nodes waiting in the gate count as started: drivers sharing a run split its work.
            if claimable and capacity - len(self.handles) - len(runnable) - (len(gate.waiting) if gate else 0) > 0:
                free = capacity - len(self.handles) - len(runnable) - (len(gate.waiting) if gate else 0)
                runnable.extend(claims.claim([claimable.popleft() for _ in range(min(free, len(claimable)))]))
                continue
            if runnable:
                batch = list(runnable)
                runnable.clear()
                for index in batch:
                    self._check_cancelled()  # not one more call once the run is cancelled
                    if gate is not None and not gate.admit(index):
                        continue  # waits in the gate until a slot, a rate token or resources free up
                    # A lone ready sync task runs in this thread: a chain pays no thread hand-off.
                    alone = inline_only or (not self.handles and len(batch) == 1)
                    if local and alone and not nodes[index].task.is_async:
                        self._start(index)
                        self._complete([run_call(self._call(index))])
                        continue
                    while len(self.handles) >= capacity:
                        self._wait_for_completions()
                        self._check_cancelled()
                    self._submit(index)
                continue
            if gate is not None and gate.waiting and self._wait_for_gate(gate, not claims.waiting):
                continue
            if claims.waiting:
                # Nodes another driver is working on: poll for their results or their lease.
                pause = backoff.next() if gate is None else gate.sooner(backoff.next())
                if self.handles:
                    self._wait_for_completions(timeout=pause)
                else:
                    self._sleep(pause)
                claimed = claims.poll_waiting(None if claimable is None else capacity - len(self.handles))
                if claimed or ready:
                    backoff.reset()
                runnable.extend(claimed)
                continue
            if not self.handles:
                if not self.retries:
                    return
                self._sleep(max(0.0, self.retries[0][0] - time.monotonic()))
                continue
            timeout = max(0.0, self.retries[0][0] - time.monotonic()) if self.retries else None
            self._wait_for_completions(timeout)

    def _wait_for_gate(self, gate: Gate, wait: bool) -> bool:
        """Take back the nodes the gate says are worth asking again; else, with ``wait``, wait for
        the gate's next hint (or a completion, or a retry). Whether the loop should go round again."""
        due = gate.poll()
        if due:
            self.runnable.extend(due)
            return True
        if not wait:
            return False
        timeout = gate.next_in()
        if self.retries:
            until_retry = max(0.0, self.retries[0][0] - time.monotonic())
            timeout = until_retry if timeout is None else min(timeout, until_retry)
        if self.handles:
            self._wait_for_completions(timeout)
        elif timeout is not None:
            self._sleep(timeout)
        return True

    def _run_inline(self, index: int) -> None:
        """Run one sync node in this thread and store it; the fast path of a chain.

        Anything unusual (events, debug logging, retries, a cache key, a failure, an oversized
        or unpicklable result) goes through the general path: run_call, then _complete.
        """
        ctx, records = self.ctx, self.records
        node = ctx.nodes[index]
        task = node.task
        if records.verbose or task.retries or ctx.keys[index] is not None or task.timeout is not None:
            self._start(index)
            self._complete([run_call(self._call(index))])
            return
        perf_counter = time.perf_counter
        started = perf_counter()
        try:
            args, kwargs = call_arguments(node, ctx.results, ctx.graph.params)
            value = task.fn(*args, **kwargs)
        except BaseException as exc:
            self._complete([Outcome(index, False, exc, None, perf_counter() - started)])
            return
        if returns_graph(value):
            self._complete([finish_call(self._call(index), value, started)])  # a graph to add
            return
        try:
            body = ctx.encoding.encode(task.name, value)
        except (SerializationError, BackendUnavailableError) as exc:  # the latter: a blob store that failed
            self._complete([Outcome(index, False, exc, None, perf_counter() - started)])
            return
        duration = perf_counter() - started
        ctx.results[index] = value
        ctx.table.finish(index, "executed")
        if records.records is not None:
            records.stored(index, duration, body)
        ctx.state.put_results({node.id: ctx.codec.seal(ctx.state_prefix + node.id, self._code_of(body), body)})
        ctx.table.release((index,), ctx.graph.downstream, self.ready)

    # -- hand-off ------------------------------------------------------------------

    def _call(self, index: int) -> TaskCall:
        node = self.ctx.nodes[index]
        args, kwargs = call_arguments(node, self.ctx.results, self.ctx.graph.params)
        return TaskCall(index, node.id, node.task, args, kwargs, self.attempts.get(index, 0), self.ctx.encoding)

    def _start(self, index: int) -> None:
        if index not in self.attempts and self.records.verbose:
            self.records.started(index)

    def _submit(self, index: int) -> None:
        self._start(index)
        try:
            call = self._call(index)
        except Exception as exc:  # an input that cannot be substituted fails this node only
            node = self.ctx.nodes[index]
            call = TaskCall(index, node.id, node.task, (), {}, self.attempts.get(index, 0))
            self.inflight.submit(call, exc)
            return
        self.inflight.submit(call)

    def _wait_for_completions(self, timeout: float | None = None) -> None:
        if self.gate is not None:
            self.gate.flush()  # a limit's slot kept for the next attempt goes back before any wait
        batch = self.inflight.wait(timeout)
        if batch:
            self._complete(batch)

    def _check_cancelled(self) -> None:
        if self.ctx.cancelled():
            import asyncio

            raise asyncio.CancelledError("the awaiting arun() was cancelled")

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the run is cancelled."""
        if self.gate is not None:
            self.gate.flush()
        if self.ctx.cancel is not None:
            self.ctx.cancel.wait(seconds)
        else:
            time.sleep(seconds)

    def _stop(self) -> None:
        """Cancel calls still queued in the executor and give up every claim."""
        self.inflight.cancel_all()
        self.claims.close()
        if self.gate is not None:
            self.gate.close()

    # -- completions -----------------------------------------------------------------

    def _complete(self, outcomes: list[Outcome]) -> None:
        """Store a batch of finished calls in one write, then release their downstream."""
        ctx, records = self.ctx, self.records
        nodes, results, keys, table = ctx.nodes, ctx.results, ctx.keys, ctx.table
        codec = ctx.codec
        to_store: dict[str, bytes] = {}
        to_cache: dict[float | None, dict[str, bytes]] = {}
        released: list[tuple[int, float]] = []
        ended: list[int] = []
        fatal: BaseException | None = None
        if self.gate is not None:  # each attempt frees its slots, retried or not
            self.gate.finished([outcome.index for outcome in outcomes])
        for outcome in outcomes:
            index = outcome.index
            node = nodes[index]
            if not outcome.ok and type(outcome.value) is ReturnedGraph:
                try:
                    grown = len(nodes)
                    self.ready.extend(self.dynamic.returned(index, outcome.value.shape))
                    if self.gate is None:
                        refuse_ungated(node.task.name, nodes[grown:])  # never a silent no-op
                    continue
                except SerializationError as exc:
                    outcome.value = exc
            if not outcome.ok:
                error = outcome.value
                stops_run = self._stops_run(error)
                if stops_run:
                    fatal = fatal or error
                elif self._retry_later(index, outcome):
                    continue
                error = outcome.value  # an observer that failed on the retry replaces it
                self.attempts.pop(index, None)
                ended.append(index)
                self._fail(index, error, stops_run, outcome.duration)
                continue
            self.attempts.pop(index, None)
            ended.append(index)
            body = outcome.body
            assert body is not None
            results[index] = outcome.value
            table.finish(index, "executed")
            records.stored(index, outcome.duration, body)
            code = self._code_of(body)
            to_store[node.id] = codec.seal(ctx.state_prefix + node.id, code, body)
            key = keys[index]
            if key is not None and (payload := self.lookup.entry_of(index, key, code, body, outcome.value)):
                to_cache.setdefault(node.task.cache_ttl, {})[key] = payload
            released.append((index, outcome.duration))
        if to_store:
            ctx.state.put_results(to_store)
        for ttl, items in to_cache.items():
            ctx.cache.set_many(items, ttl)
        if ended:
            self.claims.finished(ended)
        if fatal is not None:
            raise fatal
        if released:
            if records.verbose:
                for index, duration in released:
                    records.finished(index, duration)
            self._release_indexes([index for index, _ in released])

    def _code_of(self, body: bytes) -> bytes:
        """The serializer code to seal a node's encoded result under (a blob reference is sealed as one)."""
        code = self.ctx.codec.code
        return code if self.ctx.blobs is None else code_of(body, code)

    def _retry_later(self, index: int, outcome: Outcome) -> bool:
        """Schedule another attempt when the task allows one; False when it is out of retries."""
        task = self.ctx.nodes[index].task
        attempt = outcome.attempt
        if attempt >= task.retries:
            return False
        delay = task.retry_wait(attempt)
        try:
            self.records.retrying(index, attempt, outcome.value, delay, outcome.duration)
        except Exception as hook_error:  # an observer failed: report it as this task's failure
            outcome.value = hook_error
            return False
        self.attempts[index] = attempt + 1
        if delay:
            heapq.heappush(self.retries, (time.monotonic() + delay, index))
        else:
            self.runnable.append(index)
        return True

    def _release_indexes(self, indexes: list[int]) -> None:
        """Make ready every downstream node whose upstreams are all done now."""
        self.ctx.table.release(indexes, self.ctx.graph.downstream, self.ready)

    def _stops_run(self, error: BaseException) -> bool:
        """Ctrl-C, SystemExit and a cancelled arun() stop the run; a task's own exceptions, and
        a coroutine cancelled by other code, fail only that task."""
        if isinstance(error, Exception):
            return False
        import asyncio

        if isinstance(error, asyncio.CancelledError):
            return self.ctx.cancelled()
        return True

    def _fail(self, index: int, error: BaseException, stops_run: bool, duration: float) -> None:
        ctx = self.ctx
        ctx.table.fail(index)
        self.records.failed(index, error, stops_run, duration)
        if not stops_run:
            reason = f"upstream failed: {ctx.nodes[index].task.name}"
            ctx.table.skip_downstream(index, reason, ctx.graph.downstream)
