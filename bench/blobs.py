"""Large results by reference (docs/blobs.md), measured: scenario ``blobs`` of ``python -m bench``
(``run(server, quick)``), or alone: ``python -m bench.blobs [--quick] [--check]``.

1. Storing a 256 MB result through ``file://`` against ``pickle.dumps`` + SHA-256 + writing the
   bytes to a file (interleaved, medians; goal <= 1.3x).
2. Peak driver memory while storing one 256 MB result, in a fresh process (goal <= 2.5x its
   pickled size; the value itself counts).
3. Redis ``used_memory`` growth for ten 50 MB results with redis:// state and cache and a blob
   store (goal < 64 KiB), and the blob bytes a second run with another run id writes (goal 0).
4. The chain fast path without a blob store and with one whose threshold no result reaches
   (per-task cost of 2,000 trivial tasks, inline:// executor, memory backends).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

from .common import RedisServer, Result, Row, Seconds, Target, interleave, median, standalone

MB = 1_000_000


def _dir_bytes(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def store_256(repeats: int) -> dict[str, float]:
    import cascade_core as cs

    value = os.urandom(256 * MB)

    @cs.task
    def produce() -> bytes:
        return value

    def baseline() -> Seconds:
        folder = tempfile.mkdtemp(prefix="blob-bench-")
        started = time.perf_counter()
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        digest = hashlib.sha256(body).hexdigest()
        with open(os.path.join(folder, digest), "wb") as handle:
            handle.write(body)
        elapsed = time.perf_counter() - started
        shutil.rmtree(folder)
        return Seconds(elapsed)

    def engine() -> Seconds:
        folder = tempfile.mkdtemp(prefix="blob-bench-")  # a fresh store: the blob is written every time
        started = time.perf_counter()
        cs.run(produce(), blob_store=f"file://{folder}", executor="inline://")
        elapsed = time.perf_counter() - started
        assert _dir_bytes(folder) > 256 * MB
        shutil.rmtree(folder)
        return Seconds(elapsed)

    times = interleave({"pickle + sha256 + write": baseline, "cs.run, file:// blob store": engine}, repeats)
    base, ours = median(times["pickle + sha256 + write"]), median(times["cs.run, file:// blob store"])
    return {"baseline_s": base, "engine_s": ours, "ratio": ours / base}


_PEAK = """
import os, pickle, tempfile
import cascade_core as cs

def status(field):  # kB lines of /proc/self/status; VmHWM is this process's own peak (fresh at exec)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

start = status("VmRSS")
value = os.urandom(256 * 1_000_000)

@cs.task
def produce():
    return value

folder = tempfile.mkdtemp()
cs.run(produce(), blob_store=f"file://{folder}", executor="inline://")
peak = status("VmHWM") - start
print(peak, len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)))  # measured after the peak was read
"""


def peak_memory() -> dict[str, float]:
    """Peak resident memory of a fresh driver process over its start, value included (Linux)."""
    done = subprocess.run([sys.executable, "-c", _PEAK], capture_output=True, text=True, check=True)
    peak, size = map(int, done.stdout.split())
    return {"peak_bytes": peak, "pickled": size, "ratio": peak / size}


def redis_memory(count: int, size: int, server: RedisServer | None = None) -> dict[str, float]:
    """On ``server`` (already started; databases 8 and 9 are flushed) or on a private one."""
    import contextlib

    import cascade_core as cs

    @cs.task(cache=True)
    def part(i: int) -> bytes:
        return bytes([i]) * size

    @cs.task(cache=True)
    def small(values: list) -> int:
        return len(values)

    folder = tempfile.mkdtemp(prefix="blob-bench-")
    try:
        with contextlib.ExitStack() as stack:
            if server is None:
                server = stack.enter_context(RedisServer())
            state, cache = server.url(8), server.url(9)
            for db in (8, 9):
                flusher = server.client(db)
                flusher.flushdb()
                flusher.close()
            client = server.client(8)
            uri = f"file://{folder}"
            # Connections, loaded scripts and the databases' own tables are not what is measured.
            cs.run(small([1]), state_backend=state, cache_backend=cache, blob_store=uri, run_id="warm")
            before = int(client.info("memory")["used_memory"])
            targets = [part(i) for i in range(count)]
            cs.run(targets, state_backend=state, cache_backend=cache, blob_store=uri, run_id="one")
            grown = int(client.info("memory")["used_memory"]) - before
            written = _dir_bytes(folder)
            # A second run with another run id and no cache: same values, written again by the tasks.
            cs.run(targets, state_backend=state, blob_store=uri, run_id="two")
            again = _dir_bytes(folder) - written
            client.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"used_memory_growth": grown, "blob_bytes_first": written, "blob_bytes_second_run": again}


def chain_overhead(n: int, repeats: int) -> dict[str, float]:
    import cascade_core as cs

    @cs.task
    def inc(x: int) -> int:
        return x + 1

    def build():
        node = inc(0)
        for _ in range(n - 1):
            node = inc(node)
        return node

    folder = tempfile.mkdtemp(prefix="blob-bench-")
    cases = {
        "no blob store": lambda: cs.run(build(), executor="inline://"),
        "blob store (nothing over 1 MiB)": lambda: cs.run(build(), executor="inline://", blob_store=f"file://{folder}"),
    }
    times = interleave(cases, repeats)
    shutil.rmtree(folder, ignore_errors=True)
    return {name: median(values) / n * 1e6 for name, values in times.items()}  # microseconds per task


def run(server: RedisServer | None, quick: bool) -> Result:
    """The ``blobs`` scenario of ``python -m bench``; ``server`` is the run's redis (None: a private one)."""
    result = Result("blobs", "Blob stores (large results by reference, file:// store, issue #13)")
    repeats = 2 if quick else 5
    store = store_256(repeats)
    result.rows.append(
        Row("store 256 MB: pickle.dumps + SHA-256 + write", store["baseline_s"] * 1e3, "ms", runs=repeats)
    )
    result.rows.append(Row("store 256 MB: cs.run, file:// blob store", store["engine_s"] * 1e3, "ms", runs=repeats))
    ratio = store["ratio"]
    result.targets.append(
        Target(
            "store 256 MB via file:// vs pickle + SHA-256 + write", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3, ratio, 1.3
        )
    )
    peak = peak_memory()
    result.rows.append(Row("store 256 MB: driver peak RSS over start", peak["peak_bytes"] / MB, "MB", "fresh process"))
    result.targets.append(
        Target(
            "peak driver memory storing one 256 MB result",
            f"{peak['ratio']:.2f}x pickled size",
            "<= 2.5x",
            peak["ratio"] <= 2.5,
        )
    )
    redis = redis_memory(10, 50 * MB, server)
    growth, again = int(redis["used_memory_growth"]), int(redis["blob_bytes_second_run"])
    result.rows.append(Row("10 x 50 MB, redis state + cache: Redis used_memory growth", growth / 1024, "KiB"))
    result.rows.append(Row("10 x 50 MB: blob bytes written, first run", redis["blob_bytes_first"] / MB, "MB"))
    result.rows.append(Row("10 x 50 MB: blob bytes written, second run (other run id)", again, "bytes"))
    result.targets.append(
        Target(
            "Redis used_memory growth, 10 x 50 MB with a blob store",
            f"{growth / 1024:.1f} KiB",
            "< 64 KiB",
            growth < 64 * 1024,
        )
    )
    result.targets.append(Target("blob bytes written by a second run (other run id)", f"{again} B", "== 0", again == 0))
    chain_repeats = 5 if quick else 15
    for name, micros in chain_overhead(2000, chain_repeats).items():
        result.rows.append(
            Row(f"chain of 2,000 trivial tasks, inline://: {name}", micros, "µs/task", runs=chain_repeats)
        )
    result.notes.append(
        "Interleaved medians; the store case writes to a fresh folder every round (the blob is written each "
        "time). Peak memory: a fresh driver process, VmHWM minus VmRSS at start (the value counts)."
    )
    return result


def main(argv: list[str] | None = None) -> int:
    return standalone(lambda quick: run(None, quick), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
