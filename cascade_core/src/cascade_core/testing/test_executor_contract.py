"""The Executor contract, for the executor of ``--cascade-uri`` (docs/executors.md).

Runs real graphs through ``cs.run(..., executor=URI)`` with ``memory://`` state, and one
direct ``submit``. Side effects are counted in files, so executors whose workers are other
processes pass the same tests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import cascade_core as cs
from cascade_core.testing import executor_tasks as t
from cascade_core.testing.plugin import open_executor


def _run(uri, target, **kwargs):
    return cs.run(target, executor=uri, state_backend="memory://", cache_backend="memory://", **kwargs)


def test_submit_reports_each_call_once(cascade_executor_uri):
    from cascade_core.plugin import TaskCall, run_call  # noqa: F401  (run_call is what executors call)

    executor = open_executor(cascade_executor_uri)
    try:
        assert isinstance(executor.max_workers, int) and executor.max_workers >= 1
        outcomes, done = [], threading.Event()

        def report(outcome):
            outcomes.append(outcome)
            done.set()

        inner = t.inc  # the Task object: what the engine hands over
        handle = executor.submit(TaskCall(7, "node-7", inner, (41,), {}, 0), report)
        assert callable(getattr(handle, "cancel", None))
        assert done.wait(30), "the executor never reported the outcome"
        time.sleep(0.05)  # a second report would arrive now
        assert len(outcomes) == 1
        (outcome,) = outcomes
        value = outcome.value
        if callable(getattr(executor, "gather", None)):  # the value stays on its workers: ask for it
            value = executor.gather([value])[0]
        assert (outcome.index, outcome.ok, value, outcome.attempt) == (7, True, 42, 0)
        assert isinstance(outcome.body, bytes) and outcome.duration >= 0
    finally:
        executor.close()
    executor.close()  # twice is harmless


def test_a_chain_runs_in_dependency_order(cascade_executor_uri, tmp_path):
    chain: Any = []
    for i in range(12):
        chain = t.step(str(tmp_path), chain, i)
    assert _run(cascade_executor_uri, chain) == list(range(12))
    spans = [tuple(map(float, (tmp_path / f"step{i:03d}").read_text().split())) for i in range(12)]
    for (_, upstream_end), (downstream_start, _) in zip(spans, spans[1:]):
        assert downstream_start >= upstream_end


def test_every_argument_shape_arrives(cascade_executor_uri):
    a, b = t.inc(1), t.inc(2)  # 2 and 3
    n = cs.Param("n", default=5, type=int)
    target = t.echo(
        a,
        [a, b, 4],
        (b, (a,)),
        {"k": a, "nested": {"deep": [b]}},
        {a, 9},
        n,
        kw=b,
        listed=[n, a],
    )
    args, kwargs = _run(cascade_executor_uri, target, params={"n": 6})
    assert args == (2, [2, 3, 4], (3, (2,)), {"k": 2, "nested": {"deep": [3]}}, {2, 9}, 6)
    assert kwargs == {"kw": 3, "listed": [6, 2]}
    assert _run(cascade_executor_uri, [t.with_default(a), t.with_default(a, b=b)]) == [20, 6]


def test_a_failure_is_reported_and_skips_downstream(cascade_executor_uri):
    report = cs.Engine("memory://", "memory://", executor=cascade_executor_uri).execute(
        [t.after(t.fail("broken on purpose")), t.inc(1)]
    )
    assert report.status == "failed"
    assert isinstance(report.error, cs.TaskFailed)
    assert type(report.error.cause) is ValueError and str(report.error.cause) == "broken on purpose"
    assert (report.counts["failed"], report.counts["skipped"], report.counts["executed"]) == (1, 1, 1)


def test_retries_are_the_engines(cascade_executor_uri, tmp_path):
    seen = []

    class Watch:
        @cs.hookimpl
        def cascade_task_retrying(self, attempt):
            seen.append(attempt)

    engine = cs.Engine("memory://", "memory://", executor=cascade_executor_uri, observers=[Watch()])
    assert engine.run(t.flaky(str(tmp_path), 2)) == 3
    assert seen == [1, 2]
    assert t.count(str(tmp_path), "flaky") == 3  # three attempts, each run once


def test_retries_run_out(cascade_executor_uri, tmp_path):
    with pytest.raises(cs.TaskFailed, match="attempt 3 failed"):
        _run(cascade_executor_uri, t.flaky(str(tmp_path), 5))
    assert t.count(str(tmp_path), "flaky") == 3


def test_async_tasks(cascade_executor_uri):
    assert _run(cascade_executor_uri, t.total([t.async_double(i) for i in range(20)])) == 380


def test_a_cancelled_arun_stops_the_run(cascade_executor_uri, tmp_path):
    target = t.total([t.slow(str(tmp_path), i) for i in range(40)])
    store = cs.MemoryStateStore()

    async def cancel_soon():
        job = asyncio.ensure_future(cs.arun(target, executor=cascade_executor_uri, state_backend=store, run_id="c"))
        await asyncio.sleep(0.5)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    started = time.monotonic()
    asyncio.run(cancel_soon())
    assert time.monotonic() - started < 10
    time.sleep(0.5)  # calls already running may finish; nothing new may start
    assert t.count(str(tmp_path), "slow-start") < 40
    assert store("c").get_run_info()["status"] == "interrupted"


def test_a_fan_out_of_1000(cascade_executor_uri):
    report = cs.Engine("memory://", "memory://", executor=cascade_executor_uri).execute(
        t.total([t.inc(i) for i in range(1000)])
    )
    assert report.value == 500500
    assert report.counts["executed"] == 1001
