"""The Executor contract, for the executor of ``--cascade-uri`` (docs/executors.md).

Runs real graphs through ``cs.run(..., executor=URI)`` with ``memory://`` state, and one
direct ``submit``. Side effects are counted in files, so executors whose workers are other
processes pass the same tests. Every failure names the rule broken and its section of the docs.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import pytest

import cascade_core as cs
from cascade_core.testing import executor_tasks as t
from cascade_core.testing.plugin import broken, open_executor

CONTRACT = "docs/executors.md#the-contract"
OUTCOME = "docs/executors.md#what-comes-back-outcome"
WHO = "docs/executors.md#who-does-what"
CANCEL = "docs/executors.md#cancellation"
CANCEL_MARGIN = 1  # calls that may start after a cancel besides those running (docs/executors.md#cancellation)
LOST = "reported no outcome"  # in the engine's error for a call whose outcome never came


def _run(uri, target, **kwargs):
    return cs.run(target, executor=uri, state_backend="memory://", cache_backend="memory://", **kwargs)


def _execute(uri, target):
    return cs.Engine("memory://", "memory://", executor=uri).execute(target)


def test_submit_reports_each_call_once(cascade_executor_uri):
    from cascade_core.plugin import TaskCall

    executor = open_executor(cascade_executor_uri)
    try:
        workers = executor.max_workers
        assert isinstance(workers, int) and workers >= 1, broken(
            f"max_workers is {workers!r}", "max_workers must be a whole number >= 1", CONTRACT
        )
        outcomes, done = [], threading.Event()

        def report(outcome):
            outcomes.append(outcome)
            done.set()

        handle = executor.submit(TaskCall(7, "node-7", t.inc, (41,), {}, 0), report)
        assert callable(getattr(handle, "cancel", None)), broken(
            f"submit() returned {handle!r}", "submit(call, done) must return a handle with cancel()", CONTRACT
        )
        assert done.wait(30), broken(
            "done() was not called within 30 s of submit()",
            "call done(outcome) exactly once, from any thread, when the call finished",
            CONTRACT,
        )
        time.sleep(0.05)  # a second report would arrive now
        assert len(outcomes) == 1, broken(
            f"done() was called {len(outcomes)} times for one call", "call done(outcome) exactly once", CONTRACT
        )
        (outcome,) = outcomes
        value = outcome.value
        if callable(getattr(executor, "gather", None)):  # the value stays on its workers: ask for it
            value = executor.gather([value])[0]
        assert (outcome.index, outcome.attempt) == (7, 0), broken(
            f"the outcome says index {outcome.index!r}, attempt {outcome.attempt!r} for call 7, attempt 0",
            "Outcome.index and Outcome.attempt are copied from the call",
            OUTCOME,
        )
        assert outcome.ok is True and value == 42, broken(
            f"inc(41) came back as ok={outcome.ok!r}, value={value!r}",
            "ok: the task returned and its result encoded; value: the result (or the executor's handle to it)",
            OUTCOME,
        )
        assert isinstance(outcome.body, bytes) and outcome.duration >= 0, broken(
            f"body is {type(outcome.body).__name__}, duration {outcome.duration!r}",
            "body: the encoded result (bytes) when ok, from run_call(call); duration: seconds, >= 0",
            OUTCOME,
        )
    finally:
        executor.close()
    executor.close()  # twice is harmless


def test_a_chain_runs_in_dependency_order(cascade_executor_uri, tmp_path):
    chain: Any = []
    for i in range(12):
        chain = t.step(str(tmp_path), chain, i)
    value = _run(cascade_executor_uri, chain)
    assert value == list(range(12)), broken(
        f"a chain of 12 steps returned {value!r}",
        "args and kwargs hold the inputs with every upstream result substituted",
        "docs/executors.md#what-the-engine-hands-over-taskcall",
    )
    spans = [tuple(map(float, (tmp_path / f"step{i:03d}").read_text().split())) for i in range(12)]
    for i, ((_, upstream_end), (downstream_start, _)) in enumerate(zip(spans, spans[1:])):
        assert downstream_start >= upstream_end, broken(
            f"step {i + 1} started before step {i} ended",
            "the engine submits a call only when its upstreams' outcomes came: report done() after the call ended",
            CONTRACT,
        )


def test_every_argument_shape_arrives(cascade_executor_uri):
    a, b = t.inc(1), t.inc(2)  # 2 and 3
    n = cs.Param("n", default=5, type=int)
    target = t.echo(a, [a, b, 4], (b, (a,)), {"k": a, "nested": {"deep": [b]}}, {a, 9}, n, kw=b, listed=[n, a])
    args, kwargs = _run(cascade_executor_uri, target, params={"n": 6})
    rule = "pass call.args and call.kwargs to the task as they are: run_call(call) does"
    where = "docs/executors.md#what-the-engine-hands-over-taskcall"
    expected = (2, [2, 3, 4], (3, (2,)), {"k": 2, "nested": {"deep": [3]}}, {2, 9}, 6)
    assert args == expected, broken(f"the task got positional arguments {args!r}", rule, where)
    assert kwargs == {"kw": 3, "listed": [6, 2]}, broken(f"the task got keywords {kwargs!r}", rule, where)
    defaults = _run(cascade_executor_uri, [t.with_default(a), t.with_default(a, b=b)])
    assert defaults == [20, 6], broken(f"with_default(2) and with_default(2, b=3) gave {defaults!r}", rule, where)


def test_a_failure_is_reported_and_skips_downstream(cascade_executor_uri):
    report = _execute(cascade_executor_uri, [t.after(t.fail("broken on purpose")), t.inc(1)])
    rule = "never raise for the task's own errors: report them as a failed Outcome (ok=False, value: the exception)"
    assert report.status == "failed" and isinstance(report.error, cs.TaskFailed), broken(
        f"a run whose task raised ValueError ended {report.status!r}",
        "the executor reported success for a call that raised: " + rule,
        OUTCOME,
    )
    cause = report.error.cause
    assert type(cause) is ValueError and str(cause) == "broken on purpose", broken(
        f"the failed call's value is {type(cause).__name__}: {cause}", "value is the exception the task raised", OUTCOME
    )
    counts = (report.counts["failed"], report.counts["skipped"], report.counts["executed"])
    assert counts == (1, 1, 1), broken(
        f"failed, skipped, executed = {counts}, expected (1, 1, 1)",
        "call done(outcome) exactly once per call",
        CONTRACT,
    )


def test_retries_are_the_engines(cascade_executor_uri, tmp_path):
    seen = []

    class Watch:
        @cs.hookimpl
        def cascade_task_retrying(self, attempt):
            seen.append(attempt)

    engine = cs.Engine("memory://", "memory://", executor=cascade_executor_uri, observers=[Watch()])
    rule = "retries are the engine's: an executor never retries on its own"
    value = engine.run(t.flaky(str(tmp_path), 2))
    assert value == 3, broken(f"a task that fails twice, then succeeds, took {value!r} attempts", rule, WHO)
    assert seen == [1, 2], broken(f"the engine saw retries {seen!r}, expected [1, 2]", rule, WHO)
    runs = t.count(str(tmp_path), "flaky")
    assert runs == 3, broken(f"the task ran {runs} times for three attempts", rule, WHO)


def test_retries_run_out(cascade_executor_uri, tmp_path):
    with pytest.raises(cs.TaskFailed, match="attempt 3 failed"):
        _run(cascade_executor_uri, t.flaky(str(tmp_path), 5))
    runs = t.count(str(tmp_path), "flaky")
    assert runs == 3, broken(f"a task with retries=2 ran {runs} times", "an executor never retries on its own", WHO)


def test_async_tasks(cascade_executor_uri):
    value = _run(cascade_executor_uri, t.total([t.async_double(i) for i in range(20)]))
    assert value == 380, broken(
        f"20 async tasks summed to {value!r}",
        "run async def tasks with run_call_async(call) (call.is_async says which)",
        "docs/executors.md#what-the-engine-hands-over-taskcall",
    )


def test_a_cancelled_arun_stops_the_run(cascade_executor_uri, tmp_path):
    # Calls of a second each, cancelled half way through the first ones: no call is about to finish
    # or start, so a call that starts later was handed out (or left to run) after the cancel.
    folder, seconds = str(tmp_path), 1.0
    target = t.total([t.sleeper(folder, i, seconds) for i in range(40)])
    store = cs.MemoryStateStore()
    seen: dict[str, Any] = {}

    async def cancel_mid_call():
        job = asyncio.ensure_future(cs.arun(target, executor=cascade_executor_uri, state_backend=store, run_id="c"))
        deadline = time.monotonic() + 60
        while t.count(folder, "sleeper-start") == 0 and not job.done():
            assert time.monotonic() < deadline, broken(
                "no call started within 60 s", "max_workers: how many calls it runs at once", CONTRACT
            )
            await asyncio.sleep(0.01)
        await asyncio.sleep(seconds / 2)
        seen["started"] = t.count(folder, "sleeper-start")
        seen["cancelled"] = time.monotonic()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        seen["returned"] = time.monotonic()

    asyncio.run(cancel_mid_call())
    assert seen["returned"] - seen["cancelled"] < 5, broken(
        f"the cancelled arun() took {seen['returned'] - seen['cancelled']:.1f} s to return",
        "a cancelled arun() stops within seconds",
        CANCEL,
    )
    # Let every call that was running end, then as long again: one handed out later would start by then.
    deadline = time.monotonic() + 3 * seconds + 30
    while t.count(folder, "sleeper-end") < t.count(folder, "sleeper-start") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(seconds)
    started = t.count(folder, "sleeper-start")
    assert started <= seen["started"] + CANCEL_MARGIN, broken(
        f"{started - seen['started']} calls started after arun() was cancelled ({seen['started']} were running)",
        "calls that have not started when the run is cancelled must not start: the executor's handles ignore "
        f"cancel(), or it started calls it had queued (at most {CANCEL_MARGIN} may slip through)",
        CANCEL,
    )
    deadline = time.monotonic() + 30
    while store("c").get_run_info().get("status") != "interrupted" and time.monotonic() < deadline:
        time.sleep(0.05)
    status = store("c").get_run_info().get("status")
    assert status == "interrupted", broken(
        f"the cancelled run is recorded as {status!r}",
        "on a cancelled arun() the engine records the run as interrupted: report each cancelled call's outcome",
        CANCEL,
    )


def test_an_outcome_that_cannot_travel_fails_its_call(cascade_executor_uri):
    for target, what in ((t.unpicklable_result(), "a result"), (t.unpicklable_error(), "an exception")):
        report = _execute(cascade_executor_uri, [target, t.inc(1)])
        assert report.status == "failed" and report.counts["executed"] == 1, broken(
            f"a task returning or raising {what} that cannot be pickled ended the run {report.status!r} "
            f"({report.counts['executed']} executed)",
            "an outcome that cannot be sent back (it does not pickle) is a failed Outcome, never a lost one",
            OUTCOME,
        )
        assert LOST not in str(report.error), broken(
            f"the executor never reported the call that produced {what} that cannot be pickled; the engine gave up "
            "waiting",
            "call done(outcome) exactly once: a call whose outcome does not pickle is reported as failed",
            CONTRACT,
        )


def test_a_dead_worker_fails_its_call(cascade_executor_uri):
    # The other call finishes first: a pool whose dead worker fails every call in flight (as
    # concurrent.futures' process pool does) is not judged by a race between the two.
    other = t.inc(1)
    report = _execute(cascade_executor_uri, [t.exit_worker(os.getpid()).after(other), other])
    if report.status == "succeeded":
        assert report.value[0] == "in the driver", broken(
            f"a task that killed its worker returned {report.value[0]!r}", "done(outcome) reports what ran", OUTCOME
        )
        return  # the executor runs tasks in this process: there is no worker to lose
    # First: a lost outcome (the engine gave up waiting) is the likelier fault, and it also
    # upsets the counts when the dead worker takes other calls with it.
    assert LOST not in str(report.error), broken(
        "the executor never reported the call whose worker died; the engine gave up waiting",
        "a call whose worker died is reported as a failed Outcome",
        CONTRACT,
    )
    assert report.counts["executed"] == 1 and report.counts["failed"] == 1, broken(
        f"a worker that died mid-task left the run {report.status!r} with counts {report.counts}",
        "a call whose worker died is reported as a failed Outcome (or run again elsewhere)",
        OUTCOME,
    )


def test_a_fan_out_of_1000(cascade_executor_uri):
    report = _execute(cascade_executor_uri, t.total([t.inc(i) for i in range(1000)]))
    assert report.value == 500500 and report.counts["executed"] == 1001, broken(
        f"a fan-out of 1,000 ended {report.status!r}, value {report.value!r}, {report.counts['executed']} executed",
        "call done(outcome) exactly once per call, from any thread",
        CONTRACT,
    )
