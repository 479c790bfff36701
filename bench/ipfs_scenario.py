"""Large results on IPFS (docs/blobs.md#ipfs), measured: scenario ``ipfs`` of ``python -m bench``, or
alone: ``python -m bench.ipfs_scenario [--quick] [--check]``.

Against one offline node on loopback (js-ipfs from tests/ipfs/node after ``npm ci`` there, or
kubo with ``CASCADE_IPFS_KUBO=/path/to/ipfs``), interleaved, medians:

1. Storing a 256 MB result through ``ipfs://`` and reading it back (a run, then a resume of the
   same run id that loads the stored value), against a raw httpx ``add`` (same options: CIDv1,
   raw leaves, 1 MiB chunks, pinned) and ``cat`` of the same pickled bytes (goal <= 1.3x).
2. Peak driver memory over the same, in a fresh process (goal <= 2.5x the pickled size; the
   value itself counts).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .common import Result, Row, Seconds, Target, interleave, median, standalone

MB = 1_000_000
NODE_DIR = Path(__file__).resolve().parents[1] / "tests" / "ipfs" / "node"


class Node:
    """One offline IPFS node on a free loopback port, for the length of a ``with`` block."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.folder = tempfile.mkdtemp(prefix="bench-ipfs-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def available(self) -> bool:
        kubo = os.environ.get("CASCADE_IPFS_KUBO")
        if kubo:
            return os.access(kubo, os.X_OK)
        return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "ipfs-core").is_dir()

    def __enter__(self) -> Node:
        kubo = os.environ.get("CASCADE_IPFS_KUBO")
        env = {**os.environ, "IPFS_PATH": os.path.join(self.folder, "repo")}
        if kubo:
            subprocess.run([kubo, "init", "--profile", "test"], env=env, check=True, capture_output=True)
            for key, value in (("Addresses.API", f'"/ip4/127.0.0.1/tcp/{self.port}"'), ("Bootstrap", "[]")):
                subprocess.run([kubo, "config", "--json", key, value], env=env, check=True, capture_output=True)
            command = [kubo, "daemon", "--offline"]
        else:
            start = [str(NODE_DIR / "start.mjs"), env["IPFS_PATH"], str(self.port)]
            command = ["node", "--require", str(NODE_DIR / "preload.cjs"), *start]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(f"{self.api}/version", method="POST")
                with urllib.request.urlopen(request, timeout=5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the IPFS node did not start within 60 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v0"


def store_and_read(node: Node, size: int, repeats: int) -> dict[str, float]:
    import httpx

    import cascade_core as cs

    value = os.urandom(size)
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    params = {"cid-version": "1", "raw-leaves": "true", "chunker": "size-1048576", "pin": "true"}
    client = httpx.Client(base_url=node.api, timeout=120)

    @cs.task
    def produce() -> bytes:
        return value

    boundary = "cascade-bench-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    upload = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + len(body) + len(tail)),
    }

    view = memoryview(body)

    def pieces() -> Iterator[bytes | memoryview]:
        yield head
        for start in range(0, len(view), 1 << 20):
            yield view[start : start + (1 << 20)]
        yield tail

    def raw() -> Seconds:
        # The fastest plain httpx upload measured here: 1 MiB memoryview slices, uncopied (httpx's
        # files= copies the payload, and one 256 MB piece took twice as long).
        started = time.perf_counter()
        answer = client.post("/add", params=params, content=pieces(), headers=upload).json()
        with client.stream("POST", "/cat", params={"arg": answer["Hash"]}) as response:
            back = b"".join(response.iter_bytes())
        elapsed = time.perf_counter() - started
        assert len(back) == len(body)
        return Seconds(elapsed)

    def engine() -> Seconds:
        state = tempfile.mkdtemp(prefix="bench-ipfs-state-")
        uri = f"ipfs://127.0.0.1:{node.port}/bench-{os.urandom(4).hex()}"  # a fresh index: the blob is added
        db = f"sqlite:///{state}/state.db"
        started = time.perf_counter()
        cs.run(produce(), state_backend=db, blob_store=uri, executor="inline://", run_id="r")
        back = cs.run(produce(), state_backend=db, blob_store=uri, executor="inline://", run_id="r")  # loads it
        elapsed = time.perf_counter() - started
        assert len(back) == size
        shutil.rmtree(state)
        return Seconds(elapsed)

    times = interleave({"raw httpx add + cat": raw, "cs.run store + resume read, ipfs://": engine}, repeats)
    client.close()
    base, ours = median(times["raw httpx add + cat"]), median(times["cs.run store + resume read, ipfs://"])
    return {"baseline_s": base, "engine_s": ours, "ratio": ours / base}


def peak_memory(node: Node, size: int) -> dict[str, float]:
    """Peak resident memory of a fresh driver that stores one result, and of another that resumes the
    run and reads it back (the value counts in both; pickled size: the value's bytes plus 13)."""
    uri = f"ipfs://127.0.0.1:{node.port}/bench-peak-{os.urandom(4).hex()}"
    folder = tempfile.mkdtemp(prefix="bench-ipfs-peak-")
    db = f"sqlite:///{folder}/state.db"
    peaks = {}
    for mode in ("store", "read"):
        command = [sys.executable, "-m", "bench._ipfs_memory_worker", uri, str(size), db, mode]
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
        peaks[mode] = json.loads(done.stdout)["peak_bytes"]
    shutil.rmtree(folder, ignore_errors=True)
    pickled = len(pickle.dumps(b"\0" * size, protocol=pickle.HIGHEST_PROTOCOL))
    return {**peaks, "pickled": pickled, "ratio": max(peaks.values()) / pickled}


def run(quick: bool) -> Result:
    """The ``ipfs`` scenario of ``python -m bench``."""
    result = Result("ipfs", "IPFS blob store (256 MB through ipfs:// vs raw httpx add + cat, issue #25)")
    node = Node()
    if not node.available:
        result.notes.append(f"skipped: no js-ipfs (npm ci in {NODE_DIR}) and no CASCADE_IPFS_KUBO")
        return result
    repeats = 2 if quick else 3
    with node:
        timed = store_and_read(node, 256 * MB, repeats)
        peak = peak_memory(node, 256 * MB)
    result.rows.append(
        Row("256 MB: raw httpx add + cat of the pickled bytes", timed["baseline_s"] * 1e3, "ms", runs=repeats)
    )
    result.rows.append(Row("256 MB: cs.run store, then resume reading it", timed["engine_s"] * 1e3, "ms", runs=repeats))
    ratio = timed["ratio"]
    result.targets.append(
        Target("store + read 256 MB via ipfs:// vs raw add + cat", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3, ratio, 1.3)
    )
    for mode in ("store", "read"):
        note = "fresh process" + (", resuming the run" if mode == "read" else "")
        result.rows.append(Row(f"256 MB: driver peak RSS over start, {mode}", peak[mode] / MB, "MB", note))
    result.targets.append(
        Target(
            "peak driver memory, storing or reading 256 MB",
            f"{peak['ratio']:.2f}x pickled size",
            "<= 2.5x",
            peak["ratio"] <= 2.5,
        )
    )
    result.notes.append(
        "Interleaved medians against one offline node on loopback; each engine round uses a fresh index folder, "
        "so the blob is added every time (the node already has its blocks after the first round, for both cases)."
    )
    return result


def main(argv: list[str] | None = None) -> int:
    return standalone(run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
