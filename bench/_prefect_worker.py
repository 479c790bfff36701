"""Run in a subprocess by bench.overhead: Prefect flows vs Cascade runs of the same size, interleaved."""

from __future__ import annotations

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    n, repeats = int(sys.argv[1]), int(sys.argv[2])
    import prefect
    from prefect import flow, task

    import cascade_core as cs

    from . import workloads as w

    p_inc = task(w.inc_fn, name="inc")
    p_total = task(w.total_fn, name="total")

    @flow(name="chain", persist_result=False)
    def chain_flow(k: int) -> int:
        x = 0
        for _ in range(k):
            x = p_inc(x)
        return x

    @flow(name="fan", persist_result=False)
    def fan_flow(k: int) -> int:
        futures = [p_inc.submit(i) for i in range(k)]
        return p_total.submit(futures).result()

    started = time.perf_counter()
    chain_flow(1)  # starts the ephemeral server
    startup = time.perf_counter() - started
    cs.run(w.chain(n), state_backend=cs.MemoryStateStore(), cache_backend=cs.MemoryCacheBackend(), max_workers=1)
    cs.run(w.fan(n), state_backend=cs.MemoryStateStore(), cache_backend=cs.MemoryCacheBackend(), max_workers=1)
    out = {"n": n, "version": prefect.__version__, "startup_s": startup}
    for shape, pflow, builder in (("chain", chain_flow, w.chain), ("fan-out", fan_flow, w.fan)):
        times = {"Prefect": [], "Cascade max_workers=1 (same process)": []}
        for _ in range(repeats):
            t = time.perf_counter()
            pflow(n)
            times["Prefect"].append(time.perf_counter() - t)
            t = time.perf_counter()
            cs.run(
                builder(n), state_backend=cs.MemoryStateStore(), cache_backend=cs.MemoryCacheBackend(), max_workers=1
            )
            times["Cascade max_workers=1 (same process)"].append(time.perf_counter() - t)
        out[shape] = times
    print(json.dumps(out))


if __name__ == "__main__":
    main()
