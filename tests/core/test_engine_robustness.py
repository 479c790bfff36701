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
