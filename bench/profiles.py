"""cProfile of the engine on the overhead, redis-state and warm-cache scenarios: top functions by own time."""

from __future__ import annotations

import cProfile
import io
import os
import pstats

import cascade_core as cs

from . import workloads as w
from .common import RedisServer


def _top(profile: cProfile.Profile, limit: int) -> str:
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    stats.sort_stats("tottime").print_stats(limit)
    lines = stream.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    total = next((line.strip() for line in lines if "function calls" in line), "")
    root = os.path.dirname(os.path.dirname(cs.__file__))
    stdlib = os.path.dirname(os.__file__) + os.sep
    body = [line.replace(root + os.sep, "").replace(stdlib, "") for line in lines[start:]]
    return "\n".join([total, *[line.rstrip() for line in body if line.strip()]])


def _profile(fn, repeats: int, limit: int) -> str:
    fn()  # warm-up
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(repeats):
        fn()
    profile.disable()
    return _top(profile, limit)


def run(server: RedisServer | None, quick: bool, limit: int = 18) -> dict[str, str]:
    out: dict[str, str] = {}
    reps = 3 if quick else 10

    def mem(builder, n, workers=1):
        return lambda: cs.run(
            builder(n), state_backend=cs.MemoryStateStore(), cache_backend=cs.MemoryCacheBackend(), max_workers=workers
        )

    out["scenario 1: chain of 1,000, max_workers=1, memory backends"] = _profile(mem(w.chain, 1000), reps, limit)
    out["scenario 1: fan-out of 1,000, max_workers=1, memory backends"] = _profile(mem(w.fan, 1000), reps, limit)
    out["scenario 1: fan-out of 1,000, default workers, memory backends"] = _profile(
        mem(w.fan, 1000, None), reps, limit
    )
    if server is not None:
        url = server.url(5)
        out["scenario 2: chain of 2,000, redis state, max_workers=1"] = _profile(
            lambda: cs.run(w.chain(2000), state_backend=url, cache_backend=cs.MemoryCacheBackend(), max_workers=1),
            1 if quick else 3,
            limit,
        )
        cache_url = server.url(6)
        target = lambda: w.fan(10_000, w.cached_inc, w.cached_total)  # noqa: E731
        cs.run(target(), state_backend=cs.MemoryStateStore(), cache_backend=cache_url)
        out["scenario 3: warm run of 10,000 cached tasks, memory state, redis cache"] = _profile(
            lambda: cs.run(target(), state_backend=cs.MemoryStateStore(), cache_backend=cache_url),
            1 if quick else 3,
            limit,
        )
        server.client(5).flushdb()
        server.client(6).flushdb()
    return out
