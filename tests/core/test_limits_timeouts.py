"""timeout=: each attempt limited, counted as a failed attempt for retries, recorded as timed out;
a sync attempt abandoned at its deadline (its late result discarded), an async one cancelled."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import pytest

import cascade_core as cs


def test_a_sync_attempt_past_its_timeout_fails_retried_as_asked(tmp_path):
    started: list[float] = []
    finished = threading.Event()

    @cs.task(timeout=0.2, retries=2, name="slow")
    def slow() -> int:
        started.append(time.monotonic())
        time.sleep(0.6)
        finished.set()
        return 1

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    began = time.monotonic()
    with pytest.raises(cs.TaskFailed) as caught:
        cs.run(slow(), state_backend=db, run_id="r")
    assert len(started) == 3  # the first attempt and two retries
    assert time.monotonic() - began < 1.5  # no attempt waited for its sleep to end
    assert isinstance(caught.value.cause, cs.TaskTimeout)
    message = str(caught.value)
    assert "task 'slow' timed out after 0.2 s (attempt 3)" in message
    finished.wait(2)  # an abandoned attempt that returns later is discarded: nothing stored
    from cascade_core.backends.sqlite import SqliteStateStore

    store = SqliteStateStore(tmp_path / "runs.db")
    backend = store("r")
    assert backend.result_ids() == set()
    record = json.loads(next(iter(backend.get_task_records().values())))
    assert record["status"] == "failed" and "timed out after 0.2 s" in record["error"]
    store.close()


def test_an_async_attempt_is_cancelled_at_its_deadline():
    cancelled: list[int] = []

    @cs.task(timeout=0.2, retries=1)
    async def slow() -> int:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        return 1

    began = time.monotonic()
    with pytest.raises(cs.TaskFailed, match=r"timed out after 0.2 s \(attempt 2\)"):
        cs.run(slow())
    assert cancelled == [1, 1] and time.monotonic() - began < 2


def test_an_attempt_within_its_timeout_succeeds_on_every_builtin_executor():
    @cs.task(timeout=5)
    def quick(x: int) -> int:
        return x + 1

    @cs.task(timeout=5)
    async def aquick(x: int) -> int:
        return x * 2

    for executor in ("threads://", "inline://"):
        assert cs.run(aquick(quick(1)), executor=executor) == 4


def test_a_retry_after_a_timeout_may_succeed():
    attempts: list[int] = []

    @cs.task(timeout=0.2, retries=1)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(1)
        return "ok"

    assert cs.run(flaky()) == "ok" and len(attempts) == 2


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "5", 10**12])
def test_bad_timeouts_are_refused_in_one_line(bad):
    with pytest.raises(cs.DefinitionError) as caught:
        cs.task(timeout=bad)(lambda: 1)
    assert "timeout must be a number of seconds greater than 0" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_task_timeout_pickles_with_its_attributes():
    import pickle

    error = pickle.loads(pickle.dumps(cs.TaskTimeout("t", 1.5, 2)))
    assert (error.task, error.timeout, error.attempt) == ("t", 1.5, 2) and "attempt 3" in str(error)


FLOW = """
import os, time
import cascade_core as cs

@cs.task(timeout=30)
def hang() -> int:
    open(os.environ["FLOW_LOG"], "a").write("hang\\n")
    time.sleep(60)
    return 1

def pipeline():
    return hang()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_stops_a_run_waiting_on_a_timed_attempt(tmp_path):
    from cascade_test_cli import STORE, interrupt_after, start

    (tmp_path / "flow.py").write_text(FLOW)
    proc = start(tmp_path, "run", "flow.py:pipeline", *STORE, FLOW_LOG=str(tmp_path / "calls.log"))
    err, seconds = interrupt_after(proc, tmp_path, "hang")
    assert proc.returncode == 130, err
    assert seconds < 10  # not the 30 s timeout, not the 60 s sleep
    assert "Traceback" not in err


class _Stuck:
    """An executor whose workers cannot stop a call (as a Dask worker stuck in C code): its calls
    report long after their deadline, through a handle that records being cancelled."""

    max_workers = 2

    def __init__(self) -> None:
        self.cancelled: list[int] = []

    def submit(self, call, done):
        from cascade_core.plugin import Outcome

        executor = self

        class Handle:
            def cancel(self) -> bool:
                executor.cancelled.append(call.index)
                return True

            def done(self) -> bool:
                return False

        def late() -> None:
            time.sleep(3)
            done(Outcome(call.index, True, 1, b"late", 3.0, call.attempt))

        threading.Thread(target=late, daemon=True).start()
        return Handle()

    def close(self) -> None:
        pass


def test_the_driver_gives_up_a_call_its_executor_cannot_stop(monkeypatch):
    from cascade_core._run import inflight

    monkeypatch.setattr(inflight, "TIMEOUT_GRACE", 0.2)
    executor = _Stuck()

    @cs.task(timeout=0.2, name="stuck")
    def stuck() -> int:
        return 1

    began = time.monotonic()
    with pytest.raises(cs.TaskFailed, match=r"task 'stuck' timed out after 0.2 s \(attempt 1\)"):
        cs.run(stuck(), executor=executor)
    assert time.monotonic() - began < 2  # not the 3 s the call takes
    assert executor.cancelled == [0]  # its handle (a Dask future) was cancelled
