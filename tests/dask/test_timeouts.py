"""timeout= and resources= on Dask: a sync and an async attempt past the deadline fail with
TaskTimeout, retried as asked; a task's resources go only to a worker that has them."""

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


@cs.task(resources={"GPU": 1}, name="dask_gpu")
def on_gpu() -> str:
    import time

    import distributed

    time.sleep(0.05)  # long enough that the other worker would get some if Dask ignored the resource
    return distributed.get_worker().name


def test_resources_become_dask_worker_resources():
    import distributed

    workers = {
        "cpu": {"cls": distributed.Worker, "options": {"nthreads": 2}},
        "gpu": {"cls": distributed.Worker, "options": {"nthreads": 2, "resources": {"GPU": 1}}},
    }
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": ":0", "host": "127.0.0.1"}}
    cluster = distributed.SpecCluster(workers=workers, scheduler=scheduler)
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2)
        names = cs.run([on_gpu() for _ in range(4)], executor=DaskExecutor(client), resources={"GPU": 1})
    assert names == ["gpu"] * 4  # never the worker without the resource
