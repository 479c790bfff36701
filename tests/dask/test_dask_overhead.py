"""What keeps cascade-dask's per-task cost near raw ``Client.submit`` (bench/dask_scenario.py):
results of workers in the driver's own process are handed over without a fetch, and the client
sends each submit within 2 ms instead of Dask's 10 ms batches."""

from __future__ import annotations

import cascade_core as cs
from cascade_core.testing import executor_tasks as t
from cascade_dask import DaskExecutor
from cascade_dask import worker as dask_worker
from cascade_dask.executor import SEND_INTERVAL


def _chain(n):
    x = 0
    for _ in range(n):
        x = t.inc(x)
    return x


def _counting_gather(monkeypatch, client) -> list[int]:
    fetched: list[int] = []
    real = client.gather

    def gather(futures, *args, **kwargs):
        fetched.append(len(futures))
        return real(futures, *args, **kwargs)

    monkeypatch.setattr(client, "gather", gather)
    return fetched


def test_workers_in_the_driver_process_hand_results_over_without_a_fetch(thread_cluster, monkeypatch):
    fetched = _counting_gather(monkeypatch, thread_cluster)
    executor = DaskExecutor(thread_cluster)
    assert cs.run(_chain(8), state_backend=cs.MemoryStateStore(), executor=executor) == 8
    assert fetched == [1]  # the target only: the eight results were in the executor's inbox
    assert executor._inbox == {} and dask_worker._INBOXES[executor._prefix] is executor._inbox
    executor.close()
    assert executor._prefix not in dask_worker._INBOXES  # closed: workers of this process stop posting


def test_workers_in_other_processes_have_their_results_fetched(process_cluster, monkeypatch):
    fetched = _counting_gather(monkeypatch, process_cluster)
    executor = DaskExecutor(process_cluster)
    assert cs.run(_chain(4), state_backend=cs.MemoryStateStore(), executor=executor) == 4
    assert sum(fetched) == 5  # the four results, then the target
    assert executor._inbox == {}


def test_the_client_sends_submits_within_two_milliseconds(thread_cluster):
    executor = DaskExecutor(thread_cluster)
    thread_cluster.scheduler_comm.interval = 0.01  # Dask's default
    assert cs.run(t.inc(1), state_backend=cs.MemoryStateStore(), executor=executor) == 2
    assert thread_cluster.scheduler_comm.interval == SEND_INTERVAL == 0.002
