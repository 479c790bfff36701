"""Dynamic workflows on Dask: mapped calls run on the workers (real LocalClusters, threads and
processes); a graph returned by a task on a worker comes back to the driver and is scheduled."""

from __future__ import annotations

import os
import sys

import cloudpickle

import cascade_core as cs

from .conftest import uri_of

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes cannot import this test module


@cs.task(name="dd.listing")
def listing(n: int) -> list[int]:
    return list(range(n))


@cs.task(name="dd.where")
def where(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


@cs.task(name="dd.add")
def add(a: int, b: int) -> int:
    return a + b


@cs.task(name="dd.fib")
def fib(n: int):
    return n if n < 2 else add(fib(n - 1), fib(n - 2))


def test_mapped_calls_run_on_worker_processes(process_cluster):
    results = cs.run(where.map(listing(12)), executor=uri_of(process_cluster))
    assert [square for square, _ in results] == [x * x for x in range(12)]
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids and len(pids) >= 1


def test_a_graph_returned_on_a_worker_is_scheduled(process_cluster, tmp_path):
    state = f"sqlite:///{tmp_path}/s.db"
    assert cs.run(fib(7), executor=uri_of(process_cluster), state_backend=state, run_id="f") == 13
    assert cs.run(add.map(listing(4), cs.unmapped(fib(5))), executor=uri_of(process_cluster)) == [5, 6, 7, 8]


def test_a_router_and_a_condition_on_the_thread_cluster(thread_cluster):
    choose = cs.Router(add(1, 1), {2: fib(6), 3: fib(20)})
    assert cs.run([choose, add(1, 2).run_if(listing(0))], executor=uri_of(thread_cluster)) == [8, None]
