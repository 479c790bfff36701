"""Scenario ``dask``: cascade-dask on ``dask+local://?processes=false`` against raw ``Client.submit``
of the same graph on the same cluster, and against Prefect 3 with prefect-dask's DaskTaskRunner."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import cascade_core as cs

from . import workloads as w
from .common import Result, Row, Seconds, Target, have, interleave, median, run_prefect


def _raw_fan(client, n):
    futures = [client.submit(w.inc_fn, i, pure=False) for i in range(n)]
    return client.submit(w.total_fn, futures, pure=False).result()


def _raw_chain(client, n):
    x = client.submit(w.inc_fn, 0, pure=False)
    for _ in range(n - 1):
        x = client.submit(w.inc_fn, x, pure=False)
    return x.result()


def run(quick: bool) -> Result:
    result = Result("dask", "Dask executor (cascade-dask on a LocalCluster(processes=False), trivial tasks)")
    if not (have("distributed") and have("cascade_dask")):
        result.notes.append("not measured: pip install -e ./cascade_dask (needs distributed)")
        return result
    import distributed

    from cascade_dask import DaskExecutor

    repeats = 3 if quick else 9
    cluster = distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, host="127.0.0.1", protocol="tcp", dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    executor = DaskExecutor(client)
    ratios: dict[str, float] = {}
    per_task: dict[str, dict[str, float]] = {}
    try:
        for shape, n, builder, raw in (("fan-out", 1000, w.fan, _raw_fan), ("chain", 200, w.chain, _raw_chain)):
            expected = n * (n + 1) // 2 if shape == "fan-out" else n

            def cascade(builder=builder, n=n, expected=expected):
                started = time.perf_counter()
                value = cs.run(builder(n), state_backend=cs.MemoryStateStore(), executor=executor)
                elapsed = time.perf_counter() - started
                assert value == expected, value
                return Seconds(elapsed)

            def plain(raw=raw, n=n, expected=expected):
                assert raw(client, n) == expected

            times = interleave({"Cascade on Dask": cascade, "raw Client.submit": plain}, repeats)
            tasks = n + 1 if shape == "fan-out" else n
            per_task[shape] = {}
            for name, runs in times.items():
                med = median(runs)
                per_task[shape][name] = med / tasks * 1e3
                result.rows.append(
                    Row(
                        f"{shape} ({tasks} tasks): {name}",
                        med * 1e3,
                        "ms",
                        f"{med / tasks * 1e6:.0f} µs/task",
                        len(runs),
                    )
                )
            ratio = median(times["Cascade on Dask"]) / median(times["raw Client.submit"])
            ratios[shape] = ratio
            result.targets.append(
                Target(f"{shape}: Cascade vs raw Client.submit", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3, ratio, 1.3)
            )
        prefect = _prefect(cluster.scheduler_address, quick)
        if prefect.get("error"):
            result.notes.append(f"Prefect + prefect-dask: not measured ({prefect['error']}).")
        else:
            for shape in ("fan-out", "chain"):
                pn = prefect["n"][shape]
                tasks = pn + 1 if shape == "fan-out" else pn
                med = median(prefect[shape])
                p_task = med / tasks * 1e3
                result.rows.append(
                    Row(
                        f"{shape} ({tasks} tasks): Prefect DaskTaskRunner",
                        med * 1e3,
                        "ms",
                        f"{p_task * 1e3:.0f} µs/task",
                        len(prefect[shape]),
                    )
                )
                c_task = per_task[shape]["Cascade on Dask"]
                speedup = p_task / c_task
                result.targets.append(
                    Target(
                        f"{shape}: Cascade vs Prefect DaskTaskRunner (per task)",
                        f"{speedup:.1f}x faster",
                        ">= 10x faster",
                        speedup >= 10,
                    )
                )
            result.notes.append(
                f"Prefect {prefect['version']} with prefect-dask {prefect['prefect_dask']} in its own process, "
                "its DaskTaskRunner connected to the same cluster; smaller N (per-task times compared)."
            )
    finally:
        executor.close()
        client.close()
        cluster.close()
    result.notes.append(
        "Same cluster for every case, runs interleaved; Cascade uses memory:// state and one DaskExecutor "
        "over one client; raw Dask submits the same graph with futures as arguments and fetches the final result."
    )
    _driver_memory(result)
    return result


MEMORY_TARGET = "10 x 50 MB chain with a blob store: driver peak RSS growth"


def _driver_memory(result: Result) -> None:
    """Data stays on the workers: the driver's peak RSS growth over a chain of ten 50 MB values."""
    runs = {}
    for mode in ("blobs", "none"):
        proc = subprocess.run(
            [sys.executable, "-m", "bench._dask_memory_worker", "10", "50", mode],
            capture_output=True,
            text=True,
            timeout=600,
        )
        line = next((line for line in reversed(proc.stdout.splitlines()) if line.startswith("{")), None)
        if line is None:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            result.notes.append(f"driver memory ({mode}): not measured: {tail[:200]}")
            result.targets.append(Target(MEMORY_TARGET, "not measured", "< 30 MB", None))
            return
        runs[mode] = json.loads(line)
    growth = runs["blobs"]["growth_kib"] / 1024
    control = runs["none"]["growth_kib"] / 1024
    result.rows.append(Row("chain of 10 x 50 MB, file:// blob store: driver peak RSS growth", growth, "MB"))
    result.rows.append(Row("chain of 10 x 50 MB, no blob store (control): driver peak RSS growth", control, "MB"))
    result.targets.append(Target(MEMORY_TARGET, f"{growth:.1f} MB", "< 30 MB", growth < 30))
    result.notes.append(
        "Driver memory: a fresh process with its own LocalCluster(processes=True, 1 worker) (what "
        "dask+local://?processes=true makes), sqlite state, measured after a warm-up run (VmHWM reset "
        f"{'exact' if runs['blobs']['hwm_reset'] else 'unavailable: growth over the process peak'}); "
        "the control stores every 50 MB body through the driver."
    )


def _prefect(address: str, quick: bool) -> dict:
    if not (have("prefect") and have("prefect_dask")):
        return {"error": "prefect or prefect-dask is not installed"}
    n = 50 if quick else 200
    repeats = 2 if quick else 3
    return run_prefect(["bench._prefect_dask_worker", address, str(n), str(repeats)], 900)
