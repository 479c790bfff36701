"""Scenario 10 on a private redis-server: what naming a limit costs a chain (issue #24)."""

from __future__ import annotations

import time

import cascade_core as cs

from . import common
from . import workloads as w


@cs.task(name="bench.limited_inc", limits=["bench-api"])
def limited_inc(x: int) -> int:
    return x + 1


@cs.task(name="bench.plain_inc")
def plain_inc(x: int) -> int:
    return x + 1


def run(server: common.RedisServer, quick: bool) -> common.Result:
    result = common.Result("limits", "10. Named limits: a chain whose every task names a limit (Redis state)")
    client = server.client()
    url = server.url()
    n = 2000
    repeats = 3 if quick else 9
    cs.set_limit(url, "bench-api", concurrency=8)

    def chain(task):
        def case():
            started = time.perf_counter()
            cs.run(w.chain(n, task), state_backend=url, cache_backend=cs.MemoryCacheBackend(), max_workers=1)
            return common.Seconds(time.perf_counter() - started)

        return case

    times = common.interleave(
        {"without a limit": chain(plain_inc), "every task names a limit": chain(limited_inc)}, repeats
    )
    per = common.per_task_rows(result, times, n, f"chain of {n:,}, redis state")
    ratio = per["every task names a limit"] / per["without a limit"]
    result.targets.append(
        common.Target(
            "chain of 2,000 naming a limit vs without (redis state)",
            f"{per['every task names a limit']:.1f} vs {per['without a limit']:.1f} µs per task = {ratio:.2f}x",
            "<= 1.5x",
            ratio <= 1.5,
            ratio,
            1.5,
        )
    )
    before = common.commandstats(client)
    cs.run(w.chain(n, limited_inc), state_backend=url, cache_backend=cs.MemoryCacheBackend(), max_workers=1)
    commands = common.delta(before, common.commandstats(client))
    result.notes.append(
        f"The limit: concurrency 8. Commands of one limited chain run of {n:,}: {common.format_commands(commands)} "
        "(each acquisition one EVALSHA; a release rides on the next acquisition, or is one pipeline)."
    )
    client.flushdb()
    return result
