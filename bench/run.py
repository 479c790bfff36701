"""Run Cascade's benchmark suite: ``python -m bench [--quick] [--only a,b] [--no-write]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings

SCENARIOS = (
    "overhead",
    "redis-state",
    "warm-cache",
    "resume",
    "sqlite",
    "startup",
    "memory",
    "blobs",
    "dask",
    "redis-cluster",
    "dynamic",
    "ipfs",
    "limits",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a smaller Prefect N (< 2 minutes)")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios among: {', '.join(SCENARIOS)}")
    parser.add_argument("--no-write", action="store_true", help="print the table; do not write docs/ or plots")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile section")
    parser.add_argument(
        "--check",
        type=float,
        metavar="TOLERANCE",
        help="exit 1 when a target fails: exact targets (command counts) as stated, wall-clock ratios "
        "beyond TOLERANCE times their bound (CI uses 1.5: a shared machine moves ratios by 10-20%%)",
    )
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    warnings.filterwarnings("ignore")
    logging.getLogger("cascade.security").setLevel(logging.ERROR)  # unsigned-pickle notice of the redis cache

    from . import local_scenarios, overhead, profiles, redis_scenarios, report
    from .common import RedisServer, machine, repo_root, versions

    started = time.perf_counter()
    results = []
    server = RedisServer()
    redis_scenario_names = {"redis-state", "warm-cache", "resume", "blobs", "limits"}
    needs_redis = redis_scenario_names & set(wanted) or not args.no_profile
    skipped: list[str] = []
    if needs_redis and not server.available:
        print("redis-server is not on the PATH: the redis scenarios are skipped", file=sys.stderr)
        skipped = [name for name in SCENARIOS if name in redis_scenario_names]
    profile_text: dict[str, str] = {}

    def timed(fn, *a):
        t = time.perf_counter()
        print(f"... {fn.__module__.split('.')[-1]}.{fn.__name__}", file=sys.stderr, flush=True)
        res = fn(*a)
        res.seconds = time.perf_counter() - t
        results.append(res)

    if "overhead" in wanted:
        timed(overhead.run, args.quick)
    if server.available and (set(wanted) & redis_scenario_names or not args.no_profile):
        with server:
            if "redis-state" in wanted:
                timed(redis_scenarios.state, server, args.quick)
            if "warm-cache" in wanted:
                timed(redis_scenarios.warm_cache, server, args.quick)
            if "resume" in wanted:
                timed(redis_scenarios.resume, server, args.quick)
            if "blobs" in wanted:
                from . import blobs

                timed(blobs.run, server, args.quick)
            if "limits" in wanted:
                from . import limits_scenario

                timed(limits_scenario.run, server, args.quick)
            if not args.no_profile:
                print("... profiles", file=sys.stderr, flush=True)
                profile_text = profiles.run(server, args.quick)
    elif not args.no_profile:
        profile_text = profiles.run(None, args.quick)
    if "sqlite" in wanted:
        timed(local_scenarios.sqlite, args.quick)
    if "startup" in wanted:
        timed(local_scenarios.startup, args.quick)
    if "memory" in wanted:
        timed(local_scenarios.memory, args.quick)
    if "dask" in wanted:
        from . import dask_scenario

        timed(dask_scenario.run, args.quick)
    if "redis-cluster" in wanted:
        from . import cluster_scenario

        if cluster_scenario.LocalCluster().available:
            timed(cluster_scenario.run, args.quick)
        else:
            print("redis-server or redis-cli is not on the PATH: the cluster scenario is skipped", file=sys.stderr)
            skipped.append("redis-cluster")
    if "dynamic" in wanted:
        from . import dynamic_scenario

        timed(dynamic_scenario.run, args.quick)
    if "ipfs" in wanted:
        from . import ipfs_scenario

        timed(ipfs_scenario.run, args.quick)
    results.sort(key=lambda r: SCENARIOS.index(r.key))
    report.print_table(results)
    if skipped:
        print(f"\nskipped (no redis-server): {', '.join(skipped)}")
    if args.check is not None:
        if skipped:
            print("--check: redis-server is required", file=sys.stderr)
            return 1
        failed = [t for result in results for t in result.targets if not t.holds(args.check)]
        for target in failed:
            print(f"--check: {target.name}: {target.measured} (goal {target.goal}, tolerance {args.check}x)")
        if failed:
            return 1
    if args.no_write:
        return 0
    root = repo_root()
    img_dir = os.path.join(root, "docs", "img")
    os.makedirs(img_dir, exist_ok=True)
    for result in results:
        report.plot(result, os.path.join(img_dir, f"bench-{result.key}.png"))
    with open(os.path.join(os.path.dirname(__file__), "FINDINGS.md")) as handle:
        findings = handle.read()
    facts = {
        "machine": machine(),
        "versions": versions(),
        "mode": " --quick" if args.quick else "",
        "seconds": time.perf_counter() - started,
    }
    out = os.path.join(root, "docs", "benchmarks.md")
    report.write_markdown(results, profile_text, facts, out, img_dir, findings)
    print(f"\nwrote {os.path.relpath(out, root)} and docs/img/bench-*.png ({time.perf_counter() - started:.0f} s)")
    return 0
