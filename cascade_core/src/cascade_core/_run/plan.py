"""The plan of a run: what is stored already, which cache hits it uses, and what must run.

Planning goes backwards from the targets: a node that is done (stored, or a cache hit)
stops the walk and only its value is needed; every other wanted node must run, and wants
its upstreams. Values are loaded only for done nodes that something running (or a target)
reads.
"""

from __future__ import annotations

from typing import Any, cast

from .._errors import IntegrityError
from .._store.blob_refs import BlobError, check_reference, for_workers
from .._store.codec import state_key
from .._store.serializers import REF_CODE
from .cache_lookup import CacheLookup, Hit
from .context import DONE, MISSING, PENDING, RunContext
from .records import RunRecords, log


def positions(flags: bytearray, value: int = 1):  # -> Iterator[int]
    """The indexes of the bytes of ``flags`` equal to ``value``, found at C speed."""
    index = -1
    while (index := flags.find(value, index + 1)) >= 0:
        yield index


def prepare(ctx: RunContext, records: RunRecords, lookup: CacheLookup, stored: set[str]) -> bytearray:
    """Take stored results and cache hits, and return which nodes must run (a flag per node)."""
    nodes, status, table = ctx.nodes, ctx.status, ctx.table
    resumed = [node.index for node in nodes if node.id in stored] if stored else []
    table.mark(resumed, DONE)  # counted once the plan holds
    keys, looked_up = ctx.keys, ctx.looked_up
    # Unless each hit's size is recorded, only the entries whose values the run reads are
    # transferred (with a cache that can count the others).
    sizes_recorded = records.records is not None or records.verbose
    found, wanted = lookup.prefetch(None if sizes_recorded else lambda: _read_if_all_hit(ctx))
    hits: dict[int, Hit] = {}
    while True:
        must_run, need_value = plan(ctx)
        # Only the hits whose values the run uses are verified, deserialized and copied
        # into its state; the others feed nothing but other hits, and a resume finds them
        # in the cache again. A used hit that is refused becomes a miss: plan again.
        used: dict[str, bytes | None] = {}
        for index in positions(need_value):  # few in a warm rerun: walk them, not every hit
            key = keys[index]
            if looked_up[index] and key in found:  # looked up: `index` is one of wanted[key]
                used[key] = found[key]
        if None in used.values() and _read_counted(ctx, used, found, wanted):
            continue  # an entry counted but gone by now is a miss: plan again
        for key in used:
            del found[key]  # what is left in `found` is the unused hits
        opened = lookup.verified(cast("dict[str, bytes]", used), wanted)  # every one read by now
        hits.update(opened)
        if len(opened) == sum(len(wanted[key]) for key in used):
            if not load_stored(ctx, resumed, need_value, lookup.hold):
                break
            continue  # a stored result whose blob is lost runs again: plan again
        for key in used:
            if wanted[key][0] not in opened:
                table.mark(wanted[key], PENDING)
    if sizes_recorded:  # then every entry was read
        unused = {index: len(cast(bytes, payload)) for key, payload in found.items() for index in wanted[key]}
        lookup.take_hits(hits, unused)
    else:  # nothing records them one by one: count them
        table.count("cached", sum(map(len, map(wanted.__getitem__, found))))
        lookup.take_hits(hits)
    table.count("resumed", len(resumed))
    if table.events:
        for index in resumed:
            table.announce_skip(index, "resumed")
    for index in positions(status, PENDING):
        if not must_run[index]:
            table.skip(index, "not needed")
    return must_run


def _read_if_all_hit(ctx: RunContext) -> list[str]:
    """The cache keys whose values the run reads if every looked-up node is a hit."""
    keys, looked_up = ctx.keys, ctx.looked_up
    return list({keys[i]: None for i in positions(plan(ctx)[1]) if looked_up[i]})  # type: ignore[misc]


def _read_counted(ctx: RunContext, used: dict, found: dict, wanted: dict[str, list[int]]) -> bool:
    """Read the entries of ``used`` that were counted, not read. Returns whether one is gone
    (expired or deleted since): its nodes are pending again."""
    unread = [key for key, payload in used.items() if payload is None]
    got = ctx.cache.get_many(unread)
    gone = False
    for key in unread:
        if key in got:
            used[key] = found[key] = got[key]
        else:
            gone = True
            del used[key], found[key]
            ctx.table.mark(wanted[key], PENDING)
    return gone


def plan(ctx: RunContext) -> tuple[bytearray, bytearray]:
    """Which nodes must run, and which stored values must be loaded, to produce the targets."""
    nodes, status = ctx.nodes, ctx.status
    n = len(nodes)
    must_run = bytearray(n)
    need_value = bytearray(n)
    wanted = bytearray(n)
    for index in ctx.graph.targets:
        wanted[index] = 1
    index = n
    while (index := wanted.rfind(1, 0, index)) >= 0:  # wanted nodes in reverse topological order
        if status[index] == DONE:
            need_value[index] = 1
            continue
        must_run[index] = 1
        for up in nodes[index].upstream:
            wanted[up] = 1
    return must_run, need_value


def load_stored(ctx: RunContext, resumed: list[int], need_value: bytearray, hold: Any = None) -> list[int]:
    """Load and verify the stored results that the run reads (blobs only for those).

    Returns the nodes whose blob is missing or corrupt: they are pending again and left out
    of ``resumed``, so that they run again.
    """
    results = ctx.results
    wanted = [i for i in resumed if need_value[i] and results[i] is MISSING]
    if not wanted:
        return []
    ids = {ctx.nodes[i].id: i for i in wanted}
    payloads = ctx.state.get_results(list(ids))
    lost: list[int] = []
    for node_id, index in ids.items():
        payload = payloads.get(node_id)
        key = state_key(ctx.run_id, node_id)
        if payload is None:
            raise IntegrityError(
                f"stored result {key!r} disappeared while the run resumed; rerun to recompute it", key=key
            )
        try:
            results[index] = load_result(ctx, key, payload, hold)
        except BlobError as exc:
            task = ctx.nodes[index].task.name
            log.warning("stored result of task %s (node %s) is lost: %s; it runs again", task, node_id, exc)
            lost.append(index)
    ctx.table.mark(lost, PENDING)
    for index in lost:
        resumed.remove(index)
    return lost


def load_result(ctx: RunContext, key: str, payload: bytes, hold: Any = None) -> Any:
    """The value of a stored result, verified. With an executor whose workers read blobs
    (``hold``), a blob reference is not read here: once its blob is known to exist, the executor
    gets the reference (its workers read and verify the blob). A lost blob raises BlobError."""
    if hold is None or for_workers(ctx.blobs) is None:
        return ctx.codec.loads(key, payload)
    code, body = ctx.codec.open(key, payload)
    if code != REF_CODE:
        return ctx.codec.deserialize(key, code, body)
    check_reference(ctx.blobs, ctx.codec, key, body)  # type: ignore[arg-type]
    return hold(body, ctx.encoding)
