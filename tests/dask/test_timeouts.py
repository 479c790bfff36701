"""timeout= on Dask workers: a sync and an async attempt past the deadline fail with TaskTimeout,
retried as asked; the worker's thread is freed at the deadline, so other tasks go on."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

import cascade_core as cs
from cascade_dask import DaskExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _mark(folder: str, name: str) -> None:
    with open(Path(folder) / name, "a") as marks:
        marks.write("x")


def _count(folder: Path, name: str) -> int:
    path = folder / name
    return len(path.read_text()) if path.exists() else 0


@cs.task(timeout=0.3, retries=2, name="dask_slow")
def slow(folder: str) -> int:
    _mark(folder, "slow")
    time.sleep(3)
    return 1


@cs.task(timeout=0.3, retries=1, name="dask_aslow")
async def aslow(folder: str) -> int:
    _mark(folder, "aslow")
    await asyncio.sleep(3)
    return 1


@pytest.mark.parametrize("task, name, attempts", [(slow, "slow", 3), (aslow, "aslow", 2)])
def test_a_dask_attempt_past_its_timeout_fails_and_is_retried(thread_cluster, tmp_path, task, name, attempts):
    began = time.monotonic()
    with pytest.raises(cs.TaskFailed) as caught:
        cs.run(task(str(tmp_path)), executor=DaskExecutor(thread_cluster))
    assert _count(tmp_path, name) == attempts
    assert time.monotonic() - began < 2.5  # each attempt ended at its deadline, not its sleep
    assert isinstance(caught.value.cause, cs.TaskTimeout)
    assert f"task 'dask_{name}' timed out after 0.3 s (attempt {attempts})" in str(caught.value)
