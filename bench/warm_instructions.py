"""Instructions of one warm rerun, for callgrind: a steady signal on this noisy machine.

Runs a fan-in shape of scenario 3 cold once, warm once, then ``RUNS`` more warm runs, against a
memory cache (no Redis: only Cascade's own work is counted). One warm rerun is the difference
between the totals of ``RUNS=2`` and ``RUNS=1``::

    for runs in 1 2; do
      PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$runs \\
        "$(python -c 'import sys; print(sys.executable)')" -m bench.warm_instructions lattice $runs \\
        2>&1 | grep -o 'Collected : [0-9]*'
    done

Use the real interpreter, not a pyenv shim (a shell script). Shapes: the start of a name in
``workloads.FAN_IN_SHAPES`` (flat, tuple, dict, nested, star-args, positional, keyword, keyword-only,
defaults, tree, chain, lattice); ``records`` as a third argument: a memory state that keeps task
records as a Redis state does, so that their cost is counted too (not Redis's own).
"""

from __future__ import annotations

import sys

import cascade_core as cs

from . import workloads as w


def main(shape: str, runs: int, state: str = "memory") -> None:
    build = next(build for name, build in w.FAN_IN_SHAPES.items() if name.split(" ")[0].rstrip(":") == shape)
    cache = cs.MemoryCacheBackend()
    for _ in range(2 + runs):  # cold, warm, then the counted warm runs
        cs.run(build(10_000), state_backend=_state(state), cache_backend=cache)


def _state(kind: str) -> object:
    store = cs.MemoryStateStore()
    return store if kind == "memory" else _RecordingStore()


class _RecordingStore(cs.MemoryStateStore):
    """A memory state that keeps task records, as a Redis or sqlite state does (so the run
    records every hit's size and reads every entry, as it does with them)."""

    def __call__(self, run_id: str) -> object:
        backend = super().__call__(run_id)
        kept: dict[str, str] = {}
        backend.put_task_records = kept.update  # type: ignore[attr-defined]
        backend.get_task_records = lambda: dict(kept)  # type: ignore[attr-defined]
        return backend


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
