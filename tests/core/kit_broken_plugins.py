"""Deliberately broken plugins, each breaking one rule of a contract, for the kit to catch.

Loaded into a kit session with ``-p kit_broken_plugins`` (this folder on PYTHONPATH): importing
it registers the schemes. Workers of the process pools import it by name, so it stays importable.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
import time

import cascade_core as cs
from cascade_core.blobs.file import FileBlobStore
from cascade_core.plugin import Outcome, run_call


class _Handle:
    """A handle with cancel() only: the engine cannot tell whether its call finished."""

    def cancel(self) -> bool:
        return True


class SilentExecutor:
    """Never reports an outcome."""

    max_workers = 2

    def submit(self, call, done):
        return _Handle()

    def close(self):
        pass


class DeafExecutor:
    """Says it runs four calls at once but runs one at a time, and ignores cancel(): queued calls start anyway."""

    max_workers = 4

    def __init__(self):
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._worker, daemon=True)
        self._thread.start()

    def _worker(self):
        while True:
            item = self._work.get()
            if item is None:
                return
            call, done = item
            done(run_call(call))

    def submit(self, call, done):
        self._work.put((call, done))
        return _Handle()  # cancel() returns True and does nothing

    def close(self):
        self._work.put(None)


class CarelessPool:
    """A process pool that reports only results: an outcome that does not pickle or a dead worker is lost."""

    max_workers = 2
    outcome_timeout = 1.0  # declared short, so that the engine's own bound shows quickly

    def __init__(self):
        self._pool = concurrent.futures.ProcessPoolExecutor(2)

    def submit(self, call, done):
        future = self._pool.submit(run_call, call)
        future.add_done_callback(lambda finished: done(finished.result()))  # raises for a lost outcome
        return future

    def close(self):
        self._pool.shutdown(cancel_futures=True)


class TwiceExecutor:
    """Reports every outcome twice."""

    max_workers = 1

    def submit(self, call, done):
        outcome = run_call(call)
        done(outcome)
        done(Outcome(outcome.index, outcome.ok, outcome.value, outcome.body, outcome.duration, outcome.attempt))
        return _Handle()

    def close(self):
        pass


class StaleBlobs(FileBlobStore):
    """A put of an existing blob leaves its modification time as it was."""

    def put(self, blob_id, data):
        if os.path.exists(self._path(blob_id)):
            return False
        return super().put(blob_id, data)


class TornBlobs(FileBlobStore):
    """Writes a blob in place, a piece at a time: readers see it half written."""

    def put(self, blob_id, data):
        path = self._path(blob_id)
        if os.path.exists(path):
            os.utime(path)
            return False
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            for start in range(0, len(data), 1 << 18):
                handle.write(data[start : start + (1 << 18)])
                handle.flush()
                time.sleep(0.002)
        return True


class FragileBlobs(FileBlobStore):
    """Its second close() raises."""

    closed = False

    def close(self):
        if self.closed:
            raise RuntimeError("already closed")
        self.closed = True


class _TextStateBackend(cs.MemoryStateBackend):
    def put_results(self, results):
        super().put_results({node_id: value.decode("utf-8", "replace").encode() for node_id, value in results.items()})


class TextState(cs.MemoryStateStore):
    """Keeps payloads as text: bytes that are not UTF-8 come back changed."""

    def __call__(self, run_id):
        return _TextStateBackend(run_id, store=self)


class KeepingCache(cs.MemoryCacheBackend):
    """Its delete_many counts the live entries but deletes none."""

    def delete_many(self, keys):
        return len(self.get_many(keys))


class GreedyLeases(cs.MemoryCacheBackend):
    """Its acquire_leases takes every name, whoever holds it (a SET without NX)."""

    def acquire_leases(self, names, owner, ttl):
        for name, holder in self.lease_holders(names).items():
            self.release_leases([name], holder)
        return super().acquire_leases(names, owner, ttl)


def _provider(hook, make):
    """A provider of one hook (``cascade_executor``, ...) that returns ``make(uri)``."""

    def implementation(self, uri):
        uri.parse_options({})
        return make(uri)

    return type("Provider", (), {hook: cs.hookimpl(implementation)})()


EXECUTORS = {"silent": SilentExecutor, "deaf": DeafExecutor, "careless-pool": CarelessPool, "twice": TwiceExecutor}
BLOB_STORES = {"stale-blobs": StaleBlobs, "torn-blobs": TornBlobs, "fragile-blobs": FragileBlobs}
# One store object per scheme, as memory:// has: a second factory or cache of the URI sees the same data.
STATES = {"text-state": TextState()}
CACHES = {"keeping-cache": KeepingCache(), "greedy-leases": GreedyLeases()}

for _scheme, _make in EXECUTORS.items():
    cs.register_backend(_scheme, _provider("cascade_executor", lambda uri, make=_make: make()), replace=True)
for _scheme, _store in BLOB_STORES.items():
    _blobs = _provider("cascade_blob_store", lambda uri, store=_store: store((uri.host or "") + uri.path))
    cs.register_backend(_scheme, _blobs, replace=True)
for _scheme, _state in STATES.items():
    cs.register_backend(_scheme, _provider("cascade_state_backend", lambda uri, state=_state: state), replace=True)
for _scheme, _cache in CACHES.items():
    cs.register_backend(_scheme, _provider("cascade_cache_backend", lambda uri, cache=_cache: cache), replace=True)
