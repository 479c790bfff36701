"""Cache keys and cache hits: compute keys, fetch entries in batches, verify and use them.

A key is ``<task name>:<digest>`` from the task's cache policy; an upstream enters a
downstream key by its own key when it has one, else (and always for a downstream cached by
INPUT_VALUES: early cutoff) by the hash of its value. Keys that
need no computed value are all fetched in one ``get_many`` before anything runs; the others
as their nodes become ready.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from .._build.cache_policy import by_values, key_maker
from .._build.encoding import UnhashableInput, encode, encode_arg, encode_inputs, key_inputs
from .._build.gc_pause import collection_paused
from .._build.graph import Graph
from .._build.hashing import digest
from .._build.lazy import condition_of
from .._errors import BackendUnavailableError, HashingError, IntegrityError, SerializationError
from .._plugins.call import raise_limit
from .._store.blob_refs import check_reference, for_workers, serialize_for_cache
from .._store.codec import cache_storage_key
from .context import DONE, MISSING, PENDING, RunContext
from .records import RunRecords

log = logging.getLogger("cascade")

Hit = tuple[bytes, bytes, Any]  # a verified cache entry: serializer code, body, deserialized value


def _AFTER_VALUES(inputs: bytes) -> str:  # a marker, never called: the key waits for the upstreams' values
    raise AssertionError("a key of INPUT_VALUES computed before its upstreams' values")


class CacheLookup:
    """The cache side of one run: keys, lookups, and the hits it takes."""

    def __init__(self, ctx: RunContext, records: RunRecords, *, gather: Any = None, hold: Any = None) -> None:
        self.ctx = ctx
        self.records = records
        self.gather = gather  # the executor's gather(values), when its results are handles to values on its workers
        self.hold = hold  # the executor's hold_reference(reference, encoding): its workers read stored blobs
        self._key_makers: dict[Any, Callable[[bytes], str]] = {}  # task -> its cache-key function for this run
        # The same, for keys computed before anything runs: _AFTER_VALUES for a task whose
        # upstreams enter by their values' hashes (INPUT_VALUES), whose key waits for them.
        self._upfront_makers: dict[Any, Callable[[bytes], str]] = {}
        self._refused: set[str] = set()  # storage keys of the cache entries refused (and logged) in this run

    # -- keys --------------------------------------------------------------------

    def _key_maker(self, task: Any) -> Callable[[bytes], str]:
        maker = self._key_makers.get(task)
        if maker is None:
            maker = self._key_makers[task] = key_maker(task, self.ctx.run_id)
        return maker

    def _upfront_maker(self, task: Any) -> Callable[[bytes], str]:
        maker = self._upfront_makers[task] = _AFTER_VALUES if by_values(task) else self._key_maker(task)
        return maker

    def cache_key(self, index: int, tokens: Any) -> str:
        """``<task name>:<digest>`` from the task's policy; ``tokens[i]`` stands for upstream node ``i``."""
        ctx = self.ctx
        node = ctx.nodes[index]
        task = node.task
        try:
            inputs = node.inputs
            if inputs is None:
                inputs = encode_inputs(node.lazy, ctx.graph, ctx.graph.params, tokens)
        except UnhashableInput as exc:
            argument = _find_unhashable_argument(node.lazy, ctx.graph, ctx.graph.params, tokens)
            raise HashingError(
                f"task {task.name!r}: argument {argument!r} cannot be hashed for its cache key ({exc}); "
                "pass a picklable value, give the type a __cascade_token__ method, or turn caching off for this task",
                task=task.name,
                argument=argument,
            ) from None
        return self._key_maker(task)(inputs)

    def token(self, index: int, by_value: bool = False) -> str | None:
        """What an upstream contributes to a downstream cache key: its own key, or (without one, or
        ``by_value``) its value's hash."""
        key = self.ctx.keys[index]
        if key is not None and not by_value:
            return key
        value = self.ctx.results[index]
        if value is MISSING:
            return None
        if self.gather is not None:
            value = self.gather([value])[0]
        try:
            return digest(encode(value))
        except UnhashableInput:
            return None

    def prefetch(
        self, values_needed: Callable[[], list[str]] | None = None
    ) -> tuple[dict[str, bytes | None], dict[str, list[int]]]:
        """Compute every cache key that needs no computed value, and look them all up at once.

        Returns the payloads found (not verified yet) and the nodes of each key; the nodes
        of a found key are marked done. With ``values_needed`` (the keys whose values the run
        reads if every key is a hit) and a cache that counts entries (``count_entries``), only
        those are read and the others counted: an entry found but not read maps to None.
        """
        table = self.ctx.table
        wanted: dict[str, list[int]] = {}
        with collection_paused():
            self._compute_keys(wanted)
        if not wanted:
            return {}, wanted
        cache = self.ctx.cache
        count = self.ctx.cache_caps.count_entries
        found: dict[str, bytes | None]
        if values_needed is None or count is None:
            found = dict(cache.get_many(list(wanted)))
        else:
            every = [index for indexes in wanted.values() for index in indexes]
            table.mark(every, DONE)  # as if every key were a hit
            read = values_needed()
            table.mark(every, PENDING)
            found = dict(cache.get_many(read)) if read else {}
            was_read = set(read)
            unread = [key for key in wanted if key not in was_read]
            if count(unread) == len(unread):  # a warm rerun: every entry is there
                found.update(dict.fromkeys(unread))
            else:  # some are missing: which ones decides what runs
                found.update(cache.get_many(unread))
        # Counted as cached when taken (take_hits), or counted by the plan.
        table.mark([index for key in found for index in wanted[key]], DONE)
        return found, wanted

    def _compute_keys(self, wanted: dict[str, list[int]]) -> None:
        """Fill ``keys`` for every node whose key needs no computed value; ``wanted``: key -> pending nodes."""
        ctx = self.ctx
        keys, status, looked_up = ctx.keys, ctx.status, ctx.looked_up
        index_of = ctx.graph.index_of
        refs: list[bytes | None] = [None] * len(keys)  # b"r" + cache key, by node index
        makers, real = self._upfront_makers, self._key_makers
        for node in ctx.nodes:
            task = node.task
            if task.cache_policy is None:
                continue
            index = node.index
            if (key_digest := node.key_digest) is not None:  # its node hash is its key's digest
                key = task.key_prefix + key_digest
            elif node.inputs is not None:  # no upstream: the inputs were encoded with the node id
                key = (real.get(task) or self._key_maker(task))(node.inputs)
            elif (maker := makers.get(task) or self._upfront_maker(task)) is _AFTER_VALUES:
                continue  # its key needs its upstreams' values
            elif (inputs := key_inputs(node, refs, index_of)) is not None:
                key = maker(inputs)  # each upstream enters by its own cache key
            elif condition_of(node.lazy) is None and all(keys[dep] is not None for dep in node.data_deps):
                # (a node with a run_if condition is looked up when it runs, if it does)
                key = self.cache_key(index, keys)  # the same, for any other argument shape
            else:
                continue
            keys[index] = key
            refs[index] = b"r" + key.encode()
            if status[index] == PENDING:
                found = wanted.get(key)
                if found is None:
                    wanted[key] = [index]
                else:
                    found.append(index)
                looked_up[index] = 1

    # -- hits ----------------------------------------------------------------------

    def verified(self, found: Mapping[str, bytes], wanted: Mapping[str, list[int]]) -> dict[int, Hit]:
        """Node index -> (serializer code, body, value) of every cache entry that passes its check and loads.

        A refused entry (corrupt, tampered, or a value that no longer deserializes: its class
        was renamed, say) is a miss, logged once per run: the task runs again and overwrites it.

        When the executor's workers read blobs (``hold``), an entry that is a blob reference is
        not read here: its value is the executor's handle to the reference (``hold_reference``),
        once the blob is known to exist (a missing blob is a miss, as above).
        """
        ctx, hold = self.ctx, self.hold
        codec = ctx.cache_codec
        blobs = for_workers(ctx.blobs) if hold is not None else None
        opened, errors = codec.open_many(cache_storage_key(""), found)
        hits: dict[int, Hit] = {}
        for key, (code, body) in opened.items():
            indexes = wanted[key]
            try:
                if blobs is not None and code == b"r" and ctx.codec.accepts(code, body):
                    # A reference the state takes as it is (_for_state): no value is needed here.
                    check_reference(blobs, codec, cache_storage_key(key), body)
                    for index in indexes:
                        hits[index] = (code, body, hold(body, ctx.encoding))
                    continue
                for index in indexes:  # each node its own copy of the value, as when it runs
                    hits[index] = (code, body, codec.deserialize(cache_storage_key(key), code, body))
            except IntegrityError as exc:
                for index in indexes:
                    hits.pop(index, None)
                errors.append(exc)
        for error in errors:
            if error.key not in self._refused:  # a miss is looked up again under its cache lock
                self._refused.add(error.key)
                log.warning("ignoring cache entry: %s; the task runs again and overwrites it", error)
        return hits

    def take_hits(self, used: dict[int, Hit], unused: dict[int, int] | None = None) -> None:
        """Count and record cache hits; copy the ones the run uses into its state.

        ``used``: node index -> (serializer code, body, value), verified and deserialized.
        ``unused``: node index -> payload size of hits whose values nothing in this run reads
        (so never verified).
        """
        unused = unused or {}
        if not used and not unused:
            return
        ctx, records = self.ctx, self.records
        nodes, results = ctx.nodes, ctx.results
        for index, entry in used.items():
            results[index] = entry[2]
        ctx.table.count("cached", len(used) + len(unused))
        if records.records is not None:
            records.cached({index: len(body) for index, (_, body, _) in used.items()})
            records.cached(unused)
        if used:
            bodies = {
                nodes[index].id: self._for_state(index, code, body, value)
                for index, (code, body, value) in used.items()
            }
            ctx.state.put_results(ctx.codec.seal_many(ctx.state_prefix, {k: v for k, v in bodies.items() if v}))
        if records.verbose:
            records.served_from_cache([*used, *unused])

    def _for_state(self, index: int, code: bytes, body: bytes, value: Any) -> tuple[bytes, bytes] | None:
        """(code, body) a cache hit is stored under in the run's state: the cache's own bytes, or
        the value serialized again when the state does not accept the cache's serializer; with a
        blob store, a body over its threshold goes there and the state holds its reference, as
        for any result (a reference in the cache is copied as it is)."""
        codec, blobs = self.ctx.codec, self.ctx.blobs
        accepted = codec.accepts(code, body)
        if accepted and (blobs is None or len(body) <= blobs.threshold):
            return code, body
        from .._store.blob_refs import encode_for, spill

        try:
            return spill(blobs, code, body) if accepted else encode_for(codec, blobs, value)
        except (SerializationError, BackendUnavailableError) as exc:  # a resume looks it up in the cache again
            log.debug("cache hit of %s not copied into the state: %s", self.ctx.nodes[index].task.name, exc)
            return None

    def entry_of(self, index: int, key: str, code: bytes, body: bytes, value: Any) -> bytes | None:
        """The sealed cache entry of node ``index``, which ran to ``value`` (encoded as ``body``
        under ``code`` for the state); None, with a warning, when the cache cannot take it."""
        ctx = self.ctx
        cache_codec = ctx.cache_codec
        cache_body = body if cache_codec.serializer == ctx.codec.serializer else None
        try:
            if cache_body is None:
                value = value if self.gather is None else self.gather([value])[0]
                code, cache_body = serialize_for_cache(ctx, value)
            if ctx.cache_max_payload is not None and len(cache_body) > ctx.cache_max_payload:
                raise SerializationError(
                    f"{len(cache_body)} bytes is over the cache's limit of {ctx.cache_max_payload} bytes "
                    f"({raise_limit(ctx.cache_caps.max_payload_option)} to cache it)"
                )
            return cache_codec.seal(cache_storage_key(key), code, cache_body)
        except (SerializationError, BackendUnavailableError) as exc:
            log.warning("result of task %s not cached: %s", ctx.nodes[index].task.name, exc)
            return None

    def lookup_ready(self, ready: list[int]) -> list[int]:
        """Look up newly ready cacheable nodes in one batch; mark the hits done and return them."""
        ctx = self.ctx
        nodes, keys = ctx.nodes, ctx.keys
        wanted: dict[str, list[int]] = {}
        for index in ready:
            node = nodes[index]
            if node.task.cache_policy is None or ctx.looked_up[index]:
                continue
            tokens: dict[int, str | None] = {}
            by_value = by_values(node.task)
            for dep in node.data_deps:
                tokens[dep] = self.token(dep, by_value)
                if tokens[dep] is None:
                    argument = nodes[dep].task.name
                    raise HashingError(
                        f"task {node.task.name!r}: the result of {argument!r} cannot be hashed for its cache key; "
                        f"make {argument!r} return a picklable value or turn caching off for {node.task.name!r}",
                        task=node.task.name,
                        argument=argument,
                    )
            keys[index] = key = self.cache_key(index, tokens)
            ctx.looked_up[index] = 1
            wanted.setdefault(key, []).append(index)
        if not wanted:
            return []
        return self.take_cached(wanted)

    def take_cached(self, keys: dict[str, list[int]]) -> list[int]:
        """Take the cache entries that exist for these keys' nodes: mark them done and return them."""
        if not keys:
            return []
        hits = self.verified(self.ctx.cache.get_many(list(keys)), keys)
        self.ctx.table.mark(hits, DONE)  # counted by take_hits
        if hits:
            self.take_hits(hits)
        return list(hits)


def _find_unhashable_argument(lazy: Any, graph: Graph, params: Mapping[str, Any], tokens: Any) -> str:
    """Name the argument of ``lazy`` that cannot be encoded (for the error message)."""
    import inspect

    try:
        bound = inspect.signature(lazy.task.fn).bind_partial(*lazy.args, **lazy.kwargs).arguments
    except (TypeError, ValueError):
        bound = {f"#{i}": value for i, value in enumerate(lazy.args)} | dict(lazy.kwargs)
    for name, value in bound.items():
        try:
            encode_arg(value, graph, params, tokens)
        except UnhashableInput:
            return name
    return "?"
