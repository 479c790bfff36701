"""Scenarios 5-7: SQLite backend vs plain sqlite3, start-up time, memory per node."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import cascade_core as cs

from . import workloads as w
from .common import Result, Row, Seconds, Target, have, interleave, median, repo_root

# --------------------------------------------------------------------------- 5. sqlite


def sqlite(quick: bool) -> Result:
    n = 2000
    result = Result("sqlite", f"5. SQLite state: chain of {n:,} vs a plain sqlite3 loop (same file, WAL)")
    repeats = 3 if quick else 9
    tmp = tempfile.mkdtemp(prefix="cascade-bench-")
    path = os.path.join(tmp, "bench.db")
    url = f"sqlite:///{path}"
    cs.run(w.inc(0), state_backend=url, cache_backend=cs.MemoryCacheBackend())  # create the schema
    payload = os.urandom(28)
    ids = [f"{i:032x}" for i in range(n)]

    def raw_loop():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # what the backend sets in WAL mode
        conn.execute(
            "CREATE TABLE IF NOT EXISTS raw (run_id TEXT, node_id TEXT, payload BLOB, PRIMARY KEY (run_id, node_id))"
        )
        run_id = os.urandom(6).hex()
        started = time.perf_counter()
        for node_id in ids:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO raw VALUES (?, ?, ?)", (run_id, node_id, payload))
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return Seconds(elapsed)

    def raw_loop_select():
        conn = sqlite3.connect(path, isolation_level=None)
        run_id = os.urandom(6).hex()
        started = time.perf_counter()
        for node_id in ids:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO raw VALUES (?, ?, ?)", (run_id, node_id, payload))
            conn.execute("COMMIT")
            conn.execute("SELECT payload FROM raw WHERE run_id = ? AND node_id = ?", (run_id, node_id)).fetchone()
        elapsed = time.perf_counter() - started
        conn.close()
        return Seconds(elapsed)

    def cascade_chain():
        started = time.perf_counter()
        cs.run(w.chain(n), state_backend=url, cache_backend=cs.MemoryCacheBackend(), max_workers=1)
        return Seconds(time.perf_counter() - started)

    def cascade_memory():
        started = time.perf_counter()
        cs.run(w.chain(n), state_backend=cs.MemoryStateStore(), cache_backend=cs.MemoryCacheBackend(), max_workers=1)
        return Seconds(time.perf_counter() - started)

    try:
        times = interleave(
            {
                "raw INSERT+COMMIT loop": raw_loop,
                "raw INSERT+COMMIT+SELECT loop": raw_loop_select,
                "Cascade chain, sqlite state": cascade_chain,
                "Cascade chain, memory state": cascade_memory,
            },
            repeats,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per = {name: median(runs) / n * 1e6 for name, runs in times.items()}
    for name, runs in times.items():
        result.rows.append(Row(name, per[name], "µs/task", f"total {median(runs) * 1e3:.1f} ms", len(runs)))
    ratio = per["Cascade chain, sqlite state"] / per["raw INSERT+COMMIT loop"]
    result.targets.append(
        Target(
            "chain of 2,000 on sqlite vs raw INSERT+COMMIT loop (report)",
            f"{per['Cascade chain, sqlite state']:.1f} vs {per['raw INSERT+COMMIT loop']:.1f} µs = {ratio:.2f}x",
            "report (no target)",
            None,
        )
    )
    result.notes.append(
        "Raw loop: one connection, WAL, synchronous=NORMAL (what the backend sets), `BEGIN IMMEDIATE; INSERT OR "
        "REPLACE ...; COMMIT` per row on a (run_id, node_id) primary key, 28-byte payloads, same file. Cascade "
        "writes each finished task of a chain in its own transaction (results row + the run's `updated` stamp)."
    )
    result.plot = {
        "kind": "bars",
        "title": f"Chain of {n:,} on SQLite (lower is better)",
        "values": per,
        "unit": "µs per task",
    }
    return result


# --------------------------------------------------------------------------- 6. start-up


def startup(quick: bool) -> Result:
    result = Result("startup", "6. Start-up (fresh interpreter, wall time)")
    repeats = 5 if quick else 11
    py = sys.executable
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "import cascade_core": [py, "-c", "import cascade_core"],
        "cascade backends": [py, "-m", "cascade_core", "backends"],
        "import cascade_redis": [py, "-c", "import cascade_redis"],
        "import redis": [py, "-c", "import redis"],
    }
    if have("dask"):
        commands["import dask"] = [py, "-c", "import dask"]
        commands["import dask.delayed"] = [py, "-c", "import dask.delayed"]
    if have("prefect"):
        commands["import prefect"] = [py, "-c", "import prefect"]

    def launcher(cmd):
        return lambda: subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=repo_root(), check=False
        )

    times = interleave({name: launcher(cmd) for name, cmd in commands.items()}, repeats, warmup=1)
    base = median(times["python -c pass"])
    figures = {}
    for name, runs in times.items():
        med = median(runs)
        figures[name] = med * 1e3
        net = "" if name == "python -c pass" else f"net of interpreter start: {(med - base) * 1e3:.1f} ms"
        result.rows.append(Row(name, med * 1e3, "ms", net, len(runs)))
    if "import dask" in times:
        core = median(times["import cascade_core"]) - base
        dask_net = median(times["import dask"]) - base
        result.targets.append(
            Target(
                "import cascade_core vs import dask (net of `python -c pass`)",
                f"{core * 1e3:.1f} vs {dask_net * 1e3:.1f} ms = {core / dask_net:.2f}x",
                "< 0.5x",
                core < 0.5 * dask_net,
            )
        )
    result.notes.append(
        "`cascade backends` runs as `python -m cascade_core backends` (the console-script shim of a pyenv/venv "
        "adds its own start-up). Every command is run once before timing (warm OS cache, compiled bytecode)."
    )
    result.plot = {"kind": "bars", "title": "Start-up wall time (lower is better)", "values": figures, "unit": "ms"}
    return result


# --------------------------------------------------------------------------- 7. memory


def memory(quick: bool) -> Result:
    result = Result("memory", "7. Peak memory of building and running a graph (memory backends, max_workers=1)")
    sizes = (10_000, 100_000)
    rows = []
    figures: dict[str, dict[str, float]] = {}
    for n in sizes:
        for shape in ("fan", "chain"):
            for state in ("null", "memory"):
                proc = subprocess.run(
                    [sys.executable, "-m", "bench._memory_worker", str(n), shape, state],
                    capture_output=True,
                    text=True,
                    cwd=repo_root(),
                    timeout=600,
                )
                line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("{")), None)
                if line is None:
                    result.notes.append(f"memory worker failed for {n} {shape} {state}: {proc.stderr[-300:]}")
                    continue
                data = json.loads(line)
                rows.append(data)
                label = f"{shape}, {'engine only (state discarded)' if state == 'null' else 'memory state'}"
                per_node = data["run_kib"] * 1024 / data["nodes"]
                figures.setdefault(label, {})[f"{n:,}"] = per_node
                result.rows.append(
                    Row(
                        f"{n:,} tasks, {label}",
                        per_node,
                        "bytes/node",
                        f"build {data['build_kib'] * 1024 / data['nodes']:.0f} B/node; peak over baseline "
                        f"{data['run_kib'] / 1024:.1f} MiB; {data['seconds']:.2f} s",
                        1,
                    )
                )
    engine_max = max((r["run_kib"] * 1024 / r["nodes"] for r in rows if r["state"] == "null"), default=0.0)
    result.targets.append(
        Target(
            "engine memory per node (state discarded), worst case",
            f"{engine_max:.0f} bytes/node = {engine_max / 1024:.2f} KiB",
            "<= 2 KiB",
            engine_max <= 2048,
        )
    )
    result.notes.append(
        "Each cell is a fresh subprocess: import, one tiny warm-up run, then `ru_maxrss` as baseline; peak RSS "
        "over that baseline after building the graph (build) and after running it (peak), divided by the node "
        'count. The graph\'s own LazyResult objects count: they are what the user builds. "engine only" uses a '
        'state backend that discards writes; "memory state" keeps every sealed payload in the process.'
    )
    result.plot = {
        "kind": "grouped",
        "groups": figures,
        "unit": "bytes per node",
        "log": False,
        "title": "Peak memory per node (lower is better)",
        "line": 2048,
    }
    return result
