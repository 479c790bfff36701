"""Run in a subprocess by bench.dynamic_scenario: Prefect 3's task.map vs Cascade's run-time map, interleaved."""

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
    from .dynamic_scenario import numbers

    p_numbers = task(lambda k: list(range(k)), name="numbers")
    p_inc = task(w.inc_fn, name="inc")
    p_total = task(w.total_fn, name="total")

    @flow(name="map", persist_result=False)
    def map_flow(k: int) -> int:
        futures = p_inc.map(p_numbers(k))
        return p_total.submit(futures).result()

    map_flow(2)  # starts the ephemeral server
    times: dict[str, list[float]] = {"Prefect task.map": [], "Cascade run-time map (same process)": []}
    for _ in range(repeats):
        started = time.perf_counter()
        assert map_flow(n) == n * (n + 1) // 2
        times["Prefect task.map"].append(time.perf_counter() - started)
        started = time.perf_counter()
        assert cs.run(w.total(w.inc.map(numbers(n))), state_backend=cs.MemoryStateStore()) == n * (n + 1) // 2
        times["Cascade run-time map (same process)"].append(time.perf_counter() - started)
    print(json.dumps({"version": prefect.__version__, **times}))


if __name__ == "__main__":
    main()
