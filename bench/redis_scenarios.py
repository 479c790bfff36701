"""Scenarios 2-4 on a private redis-server: state writes, warm cache reruns, resume."""

from __future__ import annotations

import os
import pickle
import tempfile
import time
import uuid

import cascade_core as cs
from cascade_core._build.graph import build_graph
from cascade_core._store.codec import Codec, state_key

from . import workloads as w
from .common import (
    RedisServer,
    Result,
    Row,
    Seconds,
    Target,
    commandstats,
    delta,
    format_commands,
    interleave,
    median,
)


def _payload_shape(run_id: str = "20261127-214233-3f9a1c2b") -> tuple[int, int]:
    """(node id length, payload length) of what Cascade stores for a chain's small-int result."""
    graph_value = cs.run(w.inc(41), state_backend=cs.MemoryStateStore(), cache_backend=cs.MemoryCacheBackend())
    assert graph_value == 42
    from cascade_core._build.graph import build_graph

    node_id = build_graph(w.inc(41)).nodes[0].id
    payload = Codec("pickle", []).dumps(state_key(run_id, node_id), 1234)
    return len(node_id), len(payload)


# --------------------------------------------------------------------------- 2. state on redis


def state(server: RedisServer, quick: bool) -> Result:
    result = Result("redis-state", "2. State on Redis (cache in memory)")
    client = server.client()
    url = server.url()
    n_chain = 2000
    n_fan = 10_000
    repeats = 3 if quick else 9
    id_len, payload_len = _payload_shape()
    field_names = [f"{i:0{id_len}x}"[-id_len:] for i in range(max(n_chain, n_fan))]
    value = os.urandom(payload_len)

    def cascade_chain(state_backend, workers=1, builder=w.chain, n=n_chain):
        def case():
            cache = cs.MemoryCacheBackend()
            started = time.perf_counter()
            cs.run(
                builder(n),
                state_backend=state_backend() if callable(state_backend) else state_backend,
                cache_backend=cache,
                max_workers=workers,
            )
            return Seconds(time.perf_counter() - started)

        return case

    def raw_hset_loop(n=n_chain):
        def case():
            key = f"bench:raw:{uuid.uuid4().hex}"
            started = time.perf_counter()
            for name in field_names[:n]:
                client.hset(key, name, value)
            elapsed = time.perf_counter() - started
            client.delete(key)
            return Seconds(elapsed)

        return case

    def raw_pipelined(n=n_fan):
        def case():
            key = f"bench:raw:{uuid.uuid4().hex}"
            started = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for name in field_names[:n]:
                pipe.hset(key, name, value)
            pipe.execute()
            elapsed = time.perf_counter() - started
            client.delete(key)
            return Seconds(elapsed)

        return case

    times = interleave(
        {
            "raw HSET loop": raw_hset_loop(),
            "Cascade chain, redis state": cascade_chain(url),
            "Cascade chain, memory state": cascade_chain(lambda: cs.MemoryStateStore()),
        },
        repeats,
    )
    client.flushdb()
    per = {name: median(runs) / n_chain * 1e6 for name, runs in times.items()}
    for name, runs in times.items():
        result.rows.append(
            Row(f"chain of {n_chain:,}: {name}", per[name], "µs/task", f"total {median(runs) * 1e3:.1f} ms", len(runs))
        )
    ratio = per["Cascade chain, redis state"] / per["raw HSET loop"]
    result.targets.append(
        Target(
            "chain of 2,000 on redis state vs raw HSET loop",
            f"{per['Cascade chain, redis state']:.1f} vs {per['raw HSET loop']:.1f} µs per item = {ratio:.2f}x",
            "<= 1.3x",
            ratio <= 1.3,
            ratio,
            1.3,
        )
    )
    # The commands one chain run sends.
    before = commandstats(client)
    cs.run(w.chain(n_chain), state_backend=url, cache_backend=cs.MemoryCacheBackend(), max_workers=1)
    chain_cmds = delta(before, commandstats(client))
    result.notes.append(
        f"Raw loop: one `HSET key field value` per item on one key, field {id_len} chars (a node id), value "
        f"{payload_len} bytes (Cascade's sealed payload of a small int: 5-byte header, 8-byte checksum, pickle). "
        f"Commands of one Cascade chain run of {n_chain:,}: {format_commands(chain_cmds)}."
    )
    client.flushdb()

    fan_repeats = 3 if quick else 5
    times = interleave(
        {
            "raw HSET pipeline (one round trip)": raw_pipelined(),
            "raw HSET loop": raw_hset_loop(n_fan),
            "Cascade fan-out, redis state, max_workers=8": cascade_chain(url, 8, w.fan, n_fan),
            "Cascade fan-out, memory state, max_workers=8": cascade_chain(
                lambda: cs.MemoryStateStore(), 8, w.fan, n_fan
            ),
        },
        fan_repeats,
    )
    before = commandstats(client)
    cs.run(w.fan(n_fan), state_backend=url, cache_backend=cs.MemoryCacheBackend(), max_workers=8)
    fan_cmds = delta(before, commandstats(client))
    client.flushdb()
    throughput = {}
    for name, runs in times.items():
        tps = n_fan / median(runs)
        throughput[name] = tps
        result.rows.append(
            Row(f"fan-out of {n_fan:,}: {name}", tps, "items/s", f"total {median(runs) * 1e3:.0f} ms", len(runs))
        )
    result.notes.append(
        f"Commands of one Cascade fan-out run of {n_fan:,} tasks with max_workers=8: {format_commands(fan_cmds)} "
        "(each `put_results` is one pipeline: HSET results, HSET + HSETNX meta, 4 EXPIRE)."
    )
    result.plot = {
        "kind": "bars",
        "title": f"Chain of {n_chain:,}: cost per task/item (lower is better)",
        "values": {k: v for k, v in per.items()},
        "unit": "µs per task",
    }
    result.extra_plot = {"values": throughput}  # type: ignore[attr-defined]
    return result


# --------------------------------------------------------------------------- 3. warm rerun from the cache


def warm_cache(server: RedisServer, quick: bool) -> Result:
    result = Result("warm-cache", "3. Warm rerun from the Redis cache")
    client = server.client(db=1)
    url = server.url(1)
    state_url = server.url(2)
    repeats = 3 if quick else 7
    prefix = "cascade:cache:"
    figures: dict[str, float] = {}
    cmd_rows = []
    ratios: dict[str, tuple[float, float, float]] = {}  # shape -> (ratio, Cascade ms, raw ms)

    def fill(build, n):
        """Cold run: fill the cache; return the keys Cascade stored (the raw baseline MGETs them)."""
        client.flushdb()
        cs.run(build(n), state_backend=cs.MemoryStateStore(), cache_backend=url)
        return sorted(client.scan_iter(match=prefix + "*", count=1000))

    def warm(build, n, state_backend):
        def case():
            started = time.perf_counter()
            cs.run(build(n), state_backend=state_backend(), cache_backend=url)
            return Seconds(time.perf_counter() - started)

        return case

    def raw_mget(keys):
        # The same keys (so the same number, and names as long as Cascade's own), the same payloads.
        return lambda: [pickle.loads(v[13:]) for v in client.mget(keys)]

    def count_commands(build, n, label, state_backend):
        before = commandstats(client)
        cs.run(build(n), state_backend=state_backend(), cache_backend=url)
        counts = delta(before, commandstats(client))
        cmd_rows.append([f"{n:,}", label, str(sum(counts.values())), format_commands(counts)])

    # Every call shape of about 10,000 cached tasks, each against a raw MGET of its own keys, with a
    # memory state and a Redis state (which keeps task records). The shapes share one cache db, so
    # each is measured right after its own cold run.
    n = 10_000
    redis_ratios: dict[str, tuple[float, float, float]] = {}
    for shape, build in w.FAN_IN_SHAPES.items():
        keys = fill(build, n)
        cases = {
            "raw MGET + pickle.loads": raw_mget(keys),
            "Cascade warm run, memory state": warm(build, n, cs.MemoryStateStore),
            "Cascade warm run, redis state": warm(build, n, lambda: state_url),
        }
        flat = shape == "flat fan-in"
        if flat:
            cases["Cascade graph build only (task calls + build_graph)"] = lambda build=build: build_graph(build(n))
        times = interleave(cases, repeats)
        server.client(db=2).flushdb()  # the redis state's runs of this shape
        raw_ms = median(times["raw MGET + pickle.loads"]) * 1e3
        for name, runs in times.items():
            figures[f"{shape}: {name}"] = median(runs) * 1e3
            result.rows.append(
                Row(
                    f"{shape}, {len(keys):,} keys of ~{sum(map(len, keys)) // len(keys)} bytes: {name}",
                    median(runs) * 1e3,
                    "ms",
                    "",
                    len(runs),
                )
            )
        # The median of each round's ratio: a round's runs are adjacent, so they share the
        # machine's load (this shared machine's load moves either figure by 20-40% within minutes).
        for name, table in (
            ("Cascade warm run, memory state", ratios),
            ("Cascade warm run, redis state", redis_ratios),
        ):
            paired = median([c / r for c, r in zip(times[name], times["raw MGET + pickle.loads"])])
            table[shape] = (paired, median(times[name]) * 1e3, raw_ms)
        if flat:
            for label, state_backend in (("memory state", cs.MemoryStateStore), ("redis state", lambda: state_url)):
                count_commands(build, n, label, state_backend)
            server.client(db=2).flushdb()
        else:
            count_commands(build, n, f"memory state, {shape}", cs.MemoryStateStore)
    # The command count at a smaller N of the flat shape: it must not grow with N.
    small = 1000
    fill(w.FAN_IN_SHAPES["flat fan-in"], small)
    count_commands(w.FAN_IN_SHAPES["flat fan-in"], small, "memory state", cs.MemoryStateStore)
    # The Redis state's target is not met yet (docs/benchmarks.md): CI reports it but does not fail on it.
    for state, table, checked in (
        ("memory state", ratios, True),
        ("redis state (task records kept)", redis_ratios, False),
    ):
        worst = max(table, key=lambda shape: table[shape][0])
        ratio, cascade_ms, raw_ms = table[worst]
        result.targets.append(
            Target(
                f"warm run of 10,000 cached tasks, {state}, vs raw MGET + pickle.loads, worst of {len(table)} shapes",
                f"{worst}: {ratio:.2f}x (median of paired rounds; medians {cascade_ms:.1f} vs {raw_ms:.1f} ms); all: "
                + ", ".join(f"{shape} {r:.2f}x" for shape, (r, _, _) in table.items()),
                "<= 3x" if checked else "<= 3x (reported, not failed, by --check)",
                ratio <= 3,
                ratio,
                3.0,
                checked,
            )
        )
    result.extra_tables.append(
        (
            "Redis commands sent by one warm run (INFO commandstats delta, whole server)",
            ["N", "state", "commands", "by command"],
            cmd_rows,
        )
    )
    counts = {f"{row[0]} {row[1]}": int(row[2]) for row in cmd_rows if row[1].startswith("memory state")}
    steady = len(set(counts.values())) == 1
    result.targets.append(
        Target(
            "warm-run command count does not grow with N or depend on the shape",
            ", ".join(f"N={k}: {v}" for k, v in counts.items()),
            "constant",
            steady,
        )
    )
    result.notes.append(
        "Shapes (every task `cache=True`): a fan-in of 10,000 into one reduce as a list, a tuple, a dict, 100 "
        "nested lists of 100, or 10,000 star-args; 100 leaves and a task per ordered pair of them (9,900) called "
        "positionally `f(a, b, 2)`, by keyword `f(a, b, scale=2)`, with a keyword-only parameter, or with the "
        "default filled in `f(a, b)`, totalled; a tree of 100 groups of 100 "
        "summed, then totalled; a chain of 10 fans of 1,000, each task taking the previous fan's total; a lattice "
        "of 100 layers of 100, each task taking three upstream results. For each shape the raw baseline MGETs "
        "the keys Cascade stored (the same number, names of the same length) on an already connected client and "
        "unpickles each body, interleaved with the Cascade runs. The Cascade run includes building the graph, "
        "computing every cache key, opening its connection pool, reading and verifying the payloads it uses "
        "(one MGET), counting the other entries (one EXISTS of their keys, so it sends every key name as the "
        "baseline does but transfers no payload it does not use), and recording every hit. With a redis state "
        "the run records each hit's size, so it MGETs every entry, as the baseline does."
    )
    client.flushdb()
    result.plot = {"kind": "bars", "title": "Warm rerun (lower is better)", "values": figures, "unit": "ms"}
    return result


# --------------------------------------------------------------------------- 4. resume


def resume(server: RedisServer, quick: bool) -> Result:
    n = 9_999  # a fan-out of 9,999 into a reduce: 10,000 tasks, 9,999 results stored when the reduce fails
    result = Result("resume", f"4. Resume a {n + 1:,}-task run with {n:,} results stored")
    client = server.client(db=3)
    url = server.url(3)
    repeats = 2 if quick else 5
    tmp = tempfile.mkdtemp(prefix="cascade-bench-")
    sqlite_url = f"sqlite:///{os.path.join(tmp, 'resume.db')}"
    cmds: dict[str, int] = {}

    def case(state_url, track=False):
        def run_case():
            run_id = f"resume-{uuid.uuid4().hex[:12]}"
            w.FAIL["on"] = True
            try:
                cs.run(
                    w.fan(n, w.inc, w.flaky_total),
                    state_backend=state_url,
                    cache_backend=cs.MemoryCacheBackend(),
                    run_id=run_id,
                )
                raise AssertionError("the first run should fail")
            except cs.TaskFailed:
                pass
            finally:
                w.FAIL["on"] = False
            before = commandstats(client) if track else None
            started = time.perf_counter()
            value = cs.run(
                w.fan(n, w.inc, w.flaky_total),
                state_backend=state_url,
                cache_backend=cs.MemoryCacheBackend(),
                run_id=run_id,
            )
            elapsed = time.perf_counter() - started
            assert value == n * (n + 1) // 2
            if track:
                cmds.clear()
                cmds.update(delta(before, commandstats(client)))
            return Seconds(elapsed)

        return run_case

    def full(state_url):
        def run_case():
            started = time.perf_counter()
            cs.run(w.fan(n, w.inc, w.flaky_total), state_backend=state_url, cache_backend=cs.MemoryCacheBackend())
            return Seconds(time.perf_counter() - started)

        return run_case

    import logging

    logging.getLogger("cascade").setLevel(logging.CRITICAL)  # the planned failure logs an error
    try:
        times = interleave(
            {
                "resume, redis state": case(url, track=True),
                "resume, sqlite state": case(sqlite_url),
                "full run (reference), redis state": full(url),
                "full run (reference), sqlite state": full(sqlite_url),
            },
            repeats,
        )
    finally:
        logging.getLogger("cascade").setLevel(logging.NOTSET)
        import shutil

        client.flushdb()
        shutil.rmtree(tmp, ignore_errors=True)
    figures = {}
    for name, runs in times.items():
        figures[name] = median(runs) * 1e3
        result.rows.append(Row(name, median(runs) * 1e3, "ms", "graph building included", len(runs)))
    result.notes.append(
        f"The reduce fails on the first run, so {n:,} results are stored; the timed rerun uses the same run id "
        f"and executes only the reduce. Redis commands of the resumed run: {format_commands(cmds)} "
        f"({sum(cmds.values())} commands; each engine step is one call: HKEYS, HMGET of the reduce's "
        "inputs, and a few pipelined writes)."
    )
    result.targets.append(
        Target(
            "resume round trips on redis (report)",
            f"{sum(cmds.values())} commands: {format_commands(cmds)}",
            "report (no target)",
            None,
        )
    )
    result.plot = {
        "kind": "bars",
        "title": f"Resume of {n + 1:,} tasks (lower is better)",
        "values": figures,
        "unit": "ms",
    }
    return result
