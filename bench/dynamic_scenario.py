"""Scenario 11: a map over a list known only at run time, against the same fan-out built
before the run, and against Prefect 3's ``task.map`` over the same elements."""

from __future__ import annotations

import cascade_core as cs

from . import workloads as w
from .common import Result, Row, Target, interleave, median, run_prefect
from .overhead import _cascade

numbers = cs.task(name="bench.numbers")(lambda n: list(range(n)))


def run(quick: bool) -> Result:
    n = 10_000
    repeats = 3 if quick else 9
    result = Result("dynamic", "11. Dynamic fan-out (10,000 trivial mapped calls, memory backends)")
    cases = {
        "static fan-out, built before the run": _cascade(lambda k: w.total([w.inc(i) for i in range(k)]), n, None),
        "run-time map (inc.map over a task's list)": _cascade(lambda k: w.total(w.inc.map(numbers(k))), n, None),
        "build-time map (inc.map over a range)": _cascade(lambda k: w.total(w.inc.map(range(k))), n, None),
    }
    times = interleave(cases, repeats)
    static = median(times["static fan-out, built before the run"])
    for name, runs in times.items():
        med = median(runs)
        result.rows.append(Row(name, med * 1e3, "ms", f"{med / n * 1e6:.1f} µs per call", len(runs)))
    dynamic = median(times["run-time map (inc.map over a task's list)"])
    ratio = dynamic / static
    result.targets.append(Target("run-time map vs static fan-out", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5))
    prefect_n = 1_000 if quick else 10_000
    prefect = run_prefect(["bench._prefect_map_worker", str(prefect_n), "1"], timeout=1200)
    if prefect.get("error"):
        result.notes.append(f"Prefect: not measured ({prefect['error']}).")
    else:
        per_call = median(prefect["Prefect task.map"]) / prefect_n
        cascade_per_call = median(prefect["Cascade run-time map (same process)"]) / prefect_n
        result.rows.append(
            Row(
                f"Prefect {prefect['version']} task.map, N={prefect_n}",
                per_call * 1e6,
                "µs/call",
                "",
                len(prefect["Prefect task.map"]),
            )
        )
        result.rows.append(
            Row(
                f"Cascade run-time map, N={prefect_n} (Prefect's process)",
                cascade_per_call * 1e6,
                "µs/call",
                "",
                len(prefect["Cascade run-time map (same process)"]),
            )
        )
        faster = per_call / cascade_per_call
        result.targets.append(
            Target(
                "run-time map vs Prefect task.map, per mapped call",
                f"{faster:.0f}x faster",
                ">= 20x faster",
                faster >= 20,
            )
        )
        result.notes.append(
            f"Prefect {prefect['version']} ran in its own process against a temporary ephemeral API server, its "
            "default task runner (threads), `inc.map(numbers)` inside a flow and a reduce of the futures; "
            "interleaved with Cascade runs of the same map in that process."
        )
    result.notes.append(
        "Each run gets fresh in-memory state and cache; the run-time map's list comes from a task, so the "
        "calls are added while the run goes (one expansion), the static fan-out's before it."
    )
    return result
