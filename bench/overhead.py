"""Scenario 1: engine overhead per trivial task, against plain calls, Dask and Prefect."""

from __future__ import annotations

import time

import cascade_core as cs

from . import workloads as w
from .common import Result, Row, Seconds, Target, have, interleave, median, run_prefect


def _cascade(builder, n, workers):
    def case() -> None:
        store, cache = cs.MemoryStateStore(), cs.MemoryCacheBackend()
        started = time.perf_counter()
        value = cs.run(builder(n), state_backend=store, cache_backend=cache, max_workers=workers)
        elapsed = time.perf_counter() - started
        assert value == n or value == n * (n + 1) // 2, value
        return Seconds(elapsed)

    return case


def run(quick: bool) -> Result:
    n = 1000
    repeats = 5 if quick else 15
    result = Result("overhead", "1. Engine overhead (1,000 trivial tasks, memory backends)")
    has_dask = have("dask")
    per_task: dict[str, dict[str, float]] = {}
    for shape, builder, plain, dask_builder, tasks in (
        ("chain", w.chain, w.plain_chain, w.dask_chain, n),
        ("fan-out", w.fan, w.plain_fan, w.dask_fan, n + 1),
    ):
        cases = {
            "plain Python": lambda plain=plain: plain(n),
            "Cascade max_workers=1": _cascade(builder, n, 1),
            "Cascade default workers": _cascade(builder, n, None),
        }
        if has_dask:
            import dask

            cases["Dask sync"] = lambda b=dask_builder: dask.compute(b(n), scheduler="sync")
            cases["Dask threads"] = lambda b=dask_builder: dask.compute(b(n), scheduler="threads")
        times = interleave(cases, repeats)
        plain_s = median(times["plain Python"])
        per_task[shape] = {}
        for name, runs in times.items():
            med = median(runs)
            overhead_us = (med - plain_s) / tasks * 1e6 if name != "plain Python" else med / tasks * 1e6
            per_task[shape][name] = overhead_us
            result.rows.append(
                Row(
                    f"{shape}: {name}",
                    overhead_us,
                    "µs/task",
                    f"total {med * 1e3:.2f} ms (min {min(runs) * 1e3:.2f}, max {max(runs) * 1e3:.2f})",
                    len(runs),
                )
            )
    prefect = _prefect(quick)
    if prefect.get("error"):
        result.notes.append(f"Prefect: not measured ({prefect['error']}).")
    else:
        pn = prefect["n"]
        for shape in ("chain", "fan-out"):
            p = prefect[shape]
            tasks = pn if shape == "chain" else pn + 1
            for name in ("Prefect", "Cascade max_workers=1 (same process)"):
                med = median(p[name])
                per_task[shape][f"{name} N={pn}"] = med / tasks * 1e6
                result.rows.append(
                    Row(
                        f"{shape}: {name}, N={pn}",
                        med / tasks * 1e6,
                        "µs/task",
                        f"total {med * 1e3:.1f} ms per flow/run, flow overhead included",
                        len(p[name]),
                    )
                )
        result.notes.append(
            f"Prefect {prefect['version']} ran in its own process against a temporary ephemeral API server "
            f"(PREFECT_HOME in a temp dir, PREFECT_API_URL unset; server start-up {prefect['startup_s']:.1f} s not "
            f"counted), interleaved with Cascade runs of the same N in that process. A flow with {pn} tasks "
            "(sequential calls for the chain, `.submit()` + a reduce for the fan-out); per task = flow time / tasks."
        )
    if has_dask:
        for shape in ("chain", "fan-out"):
            pt = per_task[shape]
            sync_ratio = pt["Dask sync"] / pt["Cascade max_workers=1"]
            thr_ratio = pt["Dask threads"] / pt["Cascade default workers"]
            result.targets.append(
                Target(
                    f"{shape}: max_workers=1 vs Dask sync",
                    f"{pt['Cascade max_workers=1']:.1f} vs {pt['Dask sync']:.1f} µs/task = {sync_ratio:.1f}x lower",
                    ">= 20x lower",
                    sync_ratio >= 20,
                )
            )
            result.targets.append(
                Target(
                    f"{shape}: default workers vs Dask threads",
                    f"{pt['Cascade default workers']:.1f} vs {pt['Dask threads']:.1f} µs/task = {thr_ratio:.1f}x lower",
                    ">= 5x lower",
                    thr_ratio >= 5,
                )
            )
    else:
        result.notes.append("Dask is not installed: `pip install -r bench/requirements.txt`.")
    result.notes.append(
        "Per-task overhead = (median run time - median plain-Python time) / tasks, graph building included. "
        "Each Cascade run gets fresh in-memory state and cache (no result of an earlier repeat is reused). "
        "Dask `delayed` uses its default (impure, uuid-keyed) tokens."
    )
    result.plot = {
        "kind": "grouped",
        "groups": per_task,
        "unit": "µs per task (log)",
        "log": True,
        "title": "Overhead per trivial task (lower is better)",
    }
    return result


def _prefect(quick: bool) -> dict:
    if not have("prefect"):
        return {"error": "prefect is not installed"}
    n = 10 if quick else 30
    repeats = 2 if quick else 5
    return run_prefect(["bench._prefect_worker", str(n), str(repeats)], 240 if quick else 600)
