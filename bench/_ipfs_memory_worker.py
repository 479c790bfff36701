"""Run in a fresh subprocess by bench.ipfs_scenario: peak RSS of storing one result through
``ipfs://`` and reading it back (``python -m bench._ipfs_memory_worker URI SIZE``)."""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile

from ._memory_worker import current_kib, peak_kib


def main() -> None:
    uri, size = sys.argv[1], int(sys.argv[2])
    start = current_kib()  # a fresh process: VmHWM counts from its start
    import cascade_core as cs

    value = os.urandom(size)

    @cs.task
    def produce() -> bytes:
        return value

    db = "sqlite:///" + tempfile.mkdtemp() + "/state.db"
    cs.run(produce(), state_backend=db, blob_store=uri, executor="inline://", run_id="r")
    back = cs.run(produce(), state_backend=db, blob_store=uri, executor="inline://", run_id="r")  # loads the blob
    peak = peak_kib() - start
    assert len(back) == size
    pickled = len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))  # after the peak was read
    print(json.dumps({"peak_bytes": peak * 1024, "pickled": pickled, "ratio": peak * 1024 / pickled}))


if __name__ == "__main__":
    main()
