"""Instructions of one warm rerun, for callgrind: a steady signal on this noisy machine.

Runs a fan-in shape of scenario 3 cold once, warm once, then ``RUNS`` more warm runs, against a
memory cache (no Redis: only Cascade's own work is counted). One warm rerun is the difference
between the totals of ``RUNS=2`` and ``RUNS=1``::

    for runs in 1 2; do
      PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$runs \\
        "$(python -c 'import sys; print(sys.executable)')" -m bench.warm_instructions lattice $runs \\
        2>&1 | grep -o 'Collected : [0-9]*'
    done

Use the real interpreter, not a pyenv shim (a shell script). Shapes: flat, tree, chain, lattice.
"""

from __future__ import annotations

import sys

import cascade_core as cs

from . import workloads as w


def main(shape: str, runs: int) -> None:
    build = next(build for name, build in w.FAN_IN_SHAPES.items() if name.startswith(shape))
    cache = cs.MemoryCacheBackend()
    for _ in range(2 + runs):  # cold, warm, then the counted warm runs
        cs.run(build(10_000), state_backend=cs.MemoryStateStore(), cache_backend=cache)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
