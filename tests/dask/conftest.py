"""Real Dask clusters for the Dask tests, shared by the whole session (per-test clusters are slow
and flaky): one with worker threads in this process, and, only for the tests that need worker
processes, one with two single-threaded worker processes. Both listen on tcp://127.0.0.1, so a
test can reach them with a ``dask://127.0.0.1:PORT`` URI as a user would."""

from __future__ import annotations

import pytest

distributed = pytest.importorskip("distributed")


def _cluster(**options):
    return distributed.LocalCluster(
        host="127.0.0.1", protocol="tcp", dashboard_address=":0", scheduler_port=0, **options
    )


@pytest.fixture(scope="session")
def thread_cluster():
    cluster = _cluster(processes=False, n_workers=1, threads_per_worker=4)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def process_cluster():
    cluster = _cluster(processes=True, n_workers=2, threads_per_worker=1)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def uri_of(client) -> str:
    """The ``dask://`` URI of a client's scheduler."""
    return "dask://" + client.scheduler.address.removeprefix("tcp://")


def keys_on_scheduler(client, prefix: str = "") -> list[str]:
    """The keys the scheduler still holds (of tasks named ``prefix...``)."""
    keys = client.run_on_scheduler(lambda dask_scheduler: [str(key) for key in dask_scheduler.tasks])
    return [key for key in keys if key.startswith(prefix)]


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
