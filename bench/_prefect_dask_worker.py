"""Run in a subprocess by bench.dask_scenario: Prefect 3 flows on prefect-dask's DaskTaskRunner."""

from __future__ import annotations

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    address, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import prefect
    import prefect_dask
    from prefect import flow, task
    from prefect_dask import DaskTaskRunner

    from . import workloads as w

    p_inc = task(w.inc_fn, name="inc")
    p_total = task(w.total_fn, name="total")
    runner = DaskTaskRunner(address=address)

    @flow(name="fan", persist_result=False, task_runner=runner)
    def fan_flow(k: int) -> int:
        futures = [p_inc.submit(i) for i in range(k)]
        return p_total.submit(futures).result()

    @flow(name="chain", persist_result=False, task_runner=runner)
    def chain_flow(k: int) -> int:
        x = p_inc.submit(0)
        for _ in range(k - 1):
            x = p_inc.submit(x)
        return x.result()

    chain_flow(2)  # starts the ephemeral server
    out: dict = {"version": prefect.__version__, "prefect_dask": prefect_dask.__version__, "n": {}}
    for shape, pflow in (("fan-out", fan_flow), ("chain", chain_flow)):
        k = n if shape == "fan-out" else max(10, n // 4)
        out["n"][shape] = k
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            pflow(k)
            times.append(time.perf_counter() - started)
        out[shape] = times
    print(json.dumps(out))


if __name__ == "__main__":
    main()
