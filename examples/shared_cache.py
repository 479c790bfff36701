"""Example: several machines (or terminals) share one run and one cache through Redis.

    pip install ./cascade_core ./cascade_redis
    export CASCADE_SECRET_KEY=$(python -c "import secrets; print(secrets.token_urlsafe(48))")  # same on every machine
    python examples/shared_cache.py redis://localhost:6379/0 nightly    # start it on one machine...
    python examples/shared_cache.py redis://localhost:6379/0 nightly    # ...and on another, at the same time

With ``leases=True`` the two drivers share the run and split the work: each claims only the tasks
it can start now, every task runs once, on one of them, and both print the same result (the
counts say how many tasks each ran and how many came "by other drivers"). Without it, the second
driver would be refused while the first holds the run. Run it again afterwards with another run
id and everything comes from the cache.
"""

from __future__ import annotations

import os
import sys
import time

import cascade_core as cs


@cs.task(cache=True)
def simulate(seed: int) -> float:
    """A slow, deterministic computation worth sharing."""
    time.sleep(float(os.environ.get("SIMULATE_SECONDS", "0.5")))
    value = seed
    for _ in range(1000):
        value = (value * 1103515245 + 12345) % 2**31
    return value / 2**31


@cs.task
def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def main() -> None:
    uri = sys.argv[1] if len(sys.argv) > 1 else "redis://localhost:6379/0"
    run_id = sys.argv[2] if len(sys.argv) > 2 else None
    started = time.perf_counter()
    report = cs.Engine(uri, uri, leases=True, max_workers=4).execute(
        mean([simulate(seed) for seed in range(12)]), run_id=run_id
    )
    if report.error is not None:
        raise SystemExit(f"error: {report.error}")
    counts = ", ".join(
        f"{value} {name.replace('_', ' ')}" for name, value in report.counts.items() if value and name != "total"
    )
    print(f"run {report.run_id}: mean={report.value:.6f} in {time.perf_counter() - started:.2f}s ({counts})")


if __name__ == "__main__":
    main()
