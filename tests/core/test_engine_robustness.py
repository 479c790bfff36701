"""The driver never hangs: failures outside a task's own code, cancelled async work, a cancelled
arun(). Each scenario runs in a subprocess with a timeout, so a regression fails instead of hanging."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_an_observer_failing_in_a_worker_thread_fails_the_task_instead_of_hanging():
    out = _run("""
        import cascade_core as cs

        class Broken:
            @cs.hookimpl
            def cascade_task_retrying(self):
                raise RuntimeError("observer bug")

        @cs.task(retries=1)
        def flaky(i):
            raise ValueError(i)

        @cs.task
        def gather(xs):
            return xs

        report = cs.Engine(observers=[Broken()], max_workers=2).execute(gather([flaky(i) for i in range(4)]))
        print(report.status, report.counts["failed"], type(report.error.cause).__name__)
    """)
    assert out == "failed 4 RuntimeError"


def test_async_nodes_cancelled_before_they_start_are_reported():
    out = _run("""
        import asyncio
        import cascade_core as cs

        @cs.task
        async def canceller():
            # The three slow nodes reach the loop one by one: wait for them (else the run can
            # finish before anything is cancelled, and this test proves nothing).
            for _ in range(1000):
                others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if len(others) >= 3:
                    break
                await asyncio.sleep(0.005)
            for other in others:
                other.cancel()
            return 0

        @cs.task
        async def slow(i):
            await asyncio.sleep(1)
            return i

        @cs.task
        def gather(xs):
            return xs

        report = cs.Engine(max_workers=8).execute(gather([canceller(), *[slow(i) for i in range(3)]]))
        print(report.status, type(report.error.cause).__name__)
    """)
    assert out == "failed CancelledError"  # the cancelled nodes failed; the driver did not hang


def test_a_cancelled_arun_stops_the_run_and_records_it_as_interrupted():
    out = _run("""
        import asyncio, time
        import cascade_core as cs

        ran = []

        @cs.task
        def step(i):
            ran.append(i)
            time.sleep(0.1)
            return i

        @cs.task
        def gather(xs):
            return xs

        store = cs.MemoryStateStore()

        async def main():
            try:
                await asyncio.wait_for(cs.arun(gather([step(i) for i in range(20)]), state_backend=store,
                                               run_id="cancelled", max_workers=1), 0.35)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(0.5)

        asyncio.run(main())
        print(len(ran) < 20, store("cancelled").get_run_info()["status"])
    """)
    assert out == "True interrupted"


SPY = """
import asyncio, sys, time
import cascade_core as cs
from cascade_core.testing import executor_tasks as t


class Spy:
    '''Wraps an executor: when each submit came, and when the engine called cancel() on a handle.'''

    def __init__(self, inner):
        self.inner, self.max_workers = inner, inner.max_workers
        self.submits, self.cancels = [], []

    def submit(self, call, done):
        self.submits.append(time.monotonic())
        return Handle(self, self.inner.submit(call, done))

    def close(self):
        self.inner.close()


class Handle:
    def __init__(self, spy, handle):
        self.spy, self.handle = spy, handle

    def cancel(self):
        self.spy.cancels.append(time.monotonic())
        return self.handle.cancel()

    def done(self):
        return self.handle.done()


def cancel_mid_call(executor, folder, seconds=0.5):
    '''40 sleeping tasks; arun() cancelled half way through a call. Returns (calls started when cancelled,
    the time of the cancel); the run's thread goes on until it notices.'''
    target = t.total([t.sleeper(folder, i, seconds) for i in range(40)])

    async def main():
        job = asyncio.ensure_future(cs.arun(target, executor=executor, run_id="c"))
        deadline = time.monotonic() + 30
        while t.count(folder, "sleeper-start") < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        await asyncio.sleep(seconds * 1.5)  # the second pair of calls is half way
        started, cancelled = t.count(folder, "sleeper-start"), time.monotonic()
        job.cancel()
        try:
            await job
        except asyncio.CancelledError:
            pass
        return started, cancelled

    return asyncio.run(main())


def settle(folder, seconds=0.5):
    '''Wait for the calls that were running to end, then as long again (a call handed out late starts by then).'''
    deadline = time.monotonic() + 30
    while t.count(folder, "sleeper-end") < t.count(folder, "sleeper-start") and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(2 * seconds)
    return t.count(folder, "sleeper-start")
"""


def _script(tmp_path, body: str, *paths) -> str:
    import os

    (tmp_path / "spy.py").write_text(SPY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *map(str, paths)])}
    code = textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_a_cancelled_arun_stops_submitting_and_cancels_at_once_on_a_third_party_process_pool(tmp_path):
    from tests.core.test_executor_docs import example_module

    example_module(tmp_path)
    out = _script(
        tmp_path,
        f"""
        import time
        from docs_process_pool import ProcessPoolExecutor
        from spy import Spy, cancel_mid_call, settle

        spy = Spy(ProcessPoolExecutor(2))
        started, cancelled = cancel_mid_call(spy, {str(tmp_path)!r})
        deadline = time.monotonic() + 10
        while not spy.cancels and time.monotonic() < deadline:
            time.sleep(0.005)
        after = settle({str(tmp_path)!r})
        spy.close()
        late = [s for s in spy.submits if s > cancelled]
        print(started, after, len(spy.submits), len(late), round(spy.cancels[0] - cancelled, 3) < 0.2)
        """,
    )
    started, after, submits, late, prompt = out.split()
    assert (started, after, submits, late, prompt) == ("4", "4", "4", "0", "True"), out


def test_a_cancelled_arun_on_two_threads_starts_nothing_more(tmp_path):
    out = _script(
        tmp_path,
        f"""
        from spy import cancel_mid_call, settle

        started, _ = cancel_mid_call("threads://?max_workers=2", {str(tmp_path)!r})
        print(started, settle({str(tmp_path)!r}))
        """,
    )
    assert out == "4 4"


def test_ctrl_c_stops_a_run_at_once(tmp_path):
    import signal
    import time

    from cascade_core.testing import executor_tasks as t

    (tmp_path / "marks").mkdir()
    code = textwrap.dedent(f"""
        import cascade_core as cs
        from cascade_core.testing import executor_tasks as t
        cs.run(t.total([t.sleeper({str(tmp_path / "marks")!r}, i, 0.5) for i in range(40)]),
               max_workers=2, state_backend="sqlite:///{tmp_path / "r.db"}", run_id="c")
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    folder = str(tmp_path / "marks")
    deadline = time.monotonic() + 30
    while t.count(folder, "sleeper-start") < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.25)  # half way through the first pair
    started = t.count(folder, "sleeper-start")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert "KeyboardInterrupt" in stderr
    time.sleep(1.0)  # daemon workers died with the process: nothing may start any more
    assert (started, t.count(folder, "sleeper-start")) == (2, 2)
    state = f"sqlite:///{tmp_path / 'r.db'}"
    info = subprocess.run(
        [sys.executable, "-m", "cascade_core", "runs", "show", "c", "--state", state, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"interrupted"' in info.stdout, info.stdout + info.stderr


def test_a_second_outcome_of_a_call_is_ignored_with_a_warning_naming_the_executor(caplog):
    from tests.core.kit_broken_plugins import TwiceExecutor

    import cascade_core as cs
    from cascade_core.testing import executor_tasks as t

    executor = TwiceExecutor()
    target = t.total([t.inc(t.inc(i)) for i in range(8)])  # 17 tasks
    with caplog.at_level("WARNING", logger="cascade"):
        report = cs.Engine("memory://", "memory://", executor=executor).execute(target)
    assert (report.value, report.counts["executed"]) == (sum(range(2, 10)), 17)
    warnings = [r.getMessage() for r in caplog.records if "not in flight" in r.getMessage()]
    assert len(warnings) == 17
    assert all(repr(executor) in w and "exactly once per call" in w for w in warnings), warnings[0]


def test_a_call_whose_outcome_never_comes_fails_within_the_executors_outcome_timeout():
    import concurrent.futures
    import time

    import cascade_core as cs
    from cascade_core.plugin import run_call
    from cascade_core.testing import executor_tasks as t

    class Forgetful:
        """Runs each call and finishes its future, but reports the outcome of the first call only."""

        max_workers = 2
        outcome_timeout = 0.5

        def __init__(self):
            self.calls = 0

        def submit(self, call, done):
            self.calls += 1
            future = concurrent.futures.Future()
            future.set_result(None)
            if self.calls == 1:
                done(run_call(call))
            return future

        def close(self):
            pass

    started = time.monotonic()
    report = cs.Engine("memory://", "memory://", executor=Forgetful()).execute([t.inc(1), t.inc(2)])
    assert time.monotonic() - started < 5
    assert report.status == "failed" and report.counts["executed"] == 1
    assert isinstance(report.error.cause, cs.PluginError)
    assert "finished a call (its handle says done()) but reported no outcome within 0.5 s" in str(report.error.cause)


def test_an_executor_whose_submit_raises_fails_that_call_with_its_name():
    import cascade_core as cs
    from cascade_core.testing import executor_tasks as t

    class Refusing:
        max_workers = 2

        def submit(self, call, done):
            raise RuntimeError("pool is broken")

        def close(self):
            pass

        def __repr__(self):
            return "Refusing()"

    report = cs.Engine("memory://", "memory://", executor=Refusing()).execute([t.inc(1), t.inc(2)])
    assert report.status == "failed"
    assert str(report.error.cause) == (
        "executor Refusing() raised from submit() for task 'cascade_core.testing.executor_tasks.inc': "
        "RuntimeError: pool is broken"
    )
