"""Run in a fresh subprocess by bench.ipfs_scenario: peak RSS of one driver that stores a result
through ``ipfs://`` (``store``), or of one that resumes the run and reads it back (``read``):
``python -m bench._ipfs_memory_worker URI SIZE STATE_DB store|read``."""

from __future__ import annotations

import json
import os
import sys

from ._memory_worker import current_kib, peak_kib


def main() -> None:
    uri, size, db, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    start = current_kib()  # a fresh process: VmHWM counts from its start
    import cascade_core as cs

    @cs.task
    def produce() -> bytes:
        if mode != "store":
            raise AssertionError("the read run must load the stored result, not compute it")
        return os.urandom(size)

    value = cs.run(produce(), state_backend=db, blob_store=uri, executor="inline://", run_id="r")
    peak = peak_kib() - start
    assert len(value) == size
    print(json.dumps({"peak_bytes": peak * 1024}))


if __name__ == "__main__":
    main()
