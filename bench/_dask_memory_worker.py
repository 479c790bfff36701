"""Run in a fresh subprocess by bench.dask_scenario: the driver's peak RSS growth while a chain of
ten tasks, each passing a 50 MB value, runs on a LocalCluster(processes=True) (what
``dask+local://?processes=true`` makes) with a ``file://`` blob store. The workers write and read
the blobs; the driver should see only references. Without a blob store (the control) every
body comes to the driver to be stored. Prints one JSON line."""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import sys
import tempfile
import time

import cascade_core as cs

from ._memory_worker import current_kib, peak_kib, reset_peak

MB = 1_000_000


@cs.task
def first(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


@cs.task
def step(data: bytes, i: int) -> bytes:
    return bytes([i]) + data[1:]  # a new value of the same size


@cs.task
def summary(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


def chain(length: int, size: int):
    value = first(size)
    for i in range(1, length):
        value = step(value, i)
    return summary(value)


def main() -> None:
    length, size_mb, with_blobs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "blobs"
    import distributed

    from cascade_dask import DaskExecutor

    folder = tempfile.mkdtemp(prefix="cascade-bench-dask-blobs-")
    cluster = distributed.LocalCluster(
        processes=True, n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    executor = DaskExecutor(client)
    try:
        blobs = f"file://{folder}/blobs" if with_blobs else None  # None: the control, bodies come to the driver
        options = dict(state_backend=f"sqlite:///{folder}/state.db", blob_store=blobs, executor=executor)
        cs.run(chain(3, 2 * MB), run_id="warm", **options)  # imports, connections, the store opened
        gc.collect()
        exact = reset_peak()
        base = current_kib() if exact else peak_kib()
        started = time.perf_counter()
        length_out, digest = cs.run(chain(length, size_mb * MB), run_id="measured", **options)
        seconds = time.perf_counter() - started
        peak = peak_kib()
        assert length_out == size_mb * MB - size_mb * MB % 256, length_out
        print(
            json.dumps(
                {
                    "tasks": length,
                    "value_mb": size_mb,
                    "blobs": with_blobs,
                    "growth_kib": peak - base,
                    "base_kib": base,
                    "seconds": seconds,
                    "hwm_reset": exact,
                    "digest": digest,
                }
            )
        )
    finally:
        executor.close()
        client.close()
        cluster.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
