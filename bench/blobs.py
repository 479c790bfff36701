"""Large results by reference (docs/blobs.md), measured: ``python -m bench.blobs [--quick] [--check]``.

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

from .common import RedisServer, Seconds, interleave, median

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


def redis_memory(count: int, size: int) -> dict[str, float]:
    import cascade_core as cs

    @cs.task(cache=True)
    def part(i: int) -> bytes:
        return bytes([i]) * size

    @cs.task(cache=True)
    def small(values: list) -> int:
        return len(values)

    folder = tempfile.mkdtemp(prefix="blob-bench-")
    try:
        with RedisServer() as server:
            client = server.client()
            uri = f"file://{folder}"
            # Connections, loaded scripts and the databases' own tables are not what is measured.
            cs.run(small([1]), state_backend=server.url(0), cache_backend=server.url(1), blob_store=uri, run_id="warm")
            before = int(client.info("memory")["used_memory"])
            targets = [part(i) for i in range(count)]
            cs.run(targets, state_backend=server.url(0), cache_backend=server.url(1), blob_store=uri, run_id="one")
            grown = int(client.info("memory")["used_memory"]) - before
            written = _dir_bytes(folder)
            # A second run with another run id and no cache: same values, written again by the tasks.
            cs.run(targets, state_backend=server.url(0), blob_store=uri, run_id="two")
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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    quick = "--quick" in args
    results = {
        "store 256 MB": store_256(2 if quick else 5),
        "peak memory": peak_memory(),
        "redis": redis_memory(10, 50 * MB),
        "chain us/task": chain_overhead(2000, 5 if quick else 15),
    }
    for name, values in results.items():
        print(
            f"{name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        )
    if "--check" in args:
        ok = (
            results["store 256 MB"]["ratio"] <= 1.3
            and results["peak memory"]["ratio"] <= 2.5
            and results["redis"]["used_memory_growth"] < 64 * 1024
            and results["redis"]["blob_bytes_second_run"] == 0
        )
        print("targets met" if ok else "targets MISSED")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
