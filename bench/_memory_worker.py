"""Run in a fresh subprocess by bench.local_scenarios: peak RSS of building and running one graph."""

from __future__ import annotations

import gc
import json
import resource
import sys
import time


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # kB
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset the kernel's high-water mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_kib() -> int:
    hwm = _status("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def current_kib() -> int:
    rss = _status("VmRSS")
    return rss if rss is not None else peak_kib()


def main() -> None:
    n, shape, state = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    import cascade_core as cs

    from . import workloads as w
    from .common import null_state

    def state_backend():
        return null_state if state == "null" else cs.MemoryStateStore()

    builder = w.fan if shape == "fan" else w.chain
    cs.run(builder(10), state_backend=state_backend(), cache_backend=cs.MemoryCacheBackend(), max_workers=1)
    gc.collect()
    exact = reset_peak()
    base = current_kib() if exact else peak_kib()
    started = time.perf_counter()
    target = builder(n)
    built = peak_kib()
    cs.run(target, state_backend=state_backend(), cache_backend=cs.MemoryCacheBackend(), max_workers=1)
    peak = peak_kib()
    nodes = n + 1 if shape == "fan" else n
    print(
        json.dumps(
            {
                "n": n,
                "nodes": nodes,
                "shape": shape,
                "state": state,
                "base_kib": base,
                "build_kib": built - base,
                "run_kib": peak - base,
                "seconds": time.perf_counter() - started,
                "hwm_reset": exact,
            }
        )
    )


if __name__ == "__main__":
    main()
