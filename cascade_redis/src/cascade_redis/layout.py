"""The names of everything cascade-redis stores: a contract, documented in docs/redis.md.

::

    <prefix>:run:{<run id>}:results   hash    node id -> payload bytes
    <prefix>:run:{<run id>}:skipped   hash    node id -> reason
    <prefix>:run:{<run id>}:meta      hash    created, updated, status, ...
    <prefix>:run:{<run id>}:tasks     hash    node id -> JSON task record (cascade runs show)
    <prefix>:cache:<cache key>        string  payload bytes
    <prefix>:lease:{<run id>}:<node>  string  owner token of a node lease (expires)
    <prefix>:lock:<cache key>         string  owner token of a cache lock (expires)
    <prefix>:limit:{<name>}:conf      hash    a named limit's settings and rate state
    <prefix>:limit:{<name>}:held      zset    holder -> expiry (ms, server clock): its slots
    <prefix>:limit:{<name>}:waiting   zset    holder -> expiry: askers refused, waiting
    <prefix>:limits                   set     every limit's name

The braces are a redis hash tag: a run's four keys and all its leases live in one cluster
slot, and so do a limit's three keys; cache entries and their locks spread over every slot.
"""

from __future__ import annotations


def run_keys(prefix: str, run_id: str) -> tuple[str, str, str, str]:
    """The results, skipped, meta and tasks keys of one run."""
    head = f"{prefix}:run:{{{run_id}}}:"
    return head + "results", head + "skipped", head + "meta", head + "tasks"


def meta_pattern(prefix: str) -> tuple[str, str, str]:
    """(SCAN MATCH pattern, head, tail) for finding every run's meta key."""
    head, tail = f"{prefix}:run:{{", "}:meta"
    return glob_escape(head) + "*" + glob_escape(tail), head, tail


def lease_key(prefix: str, run_id: str, node_id: str) -> str:
    """The lease on one node of one run (same hash tag as the run's other keys)."""
    return f"{prefix}:lease:{{{run_id}}}:{node_id}"


def lock_key(prefix: str, key: str) -> str:
    """The dogpile lock of one cache entry."""
    return f"{prefix}:lock:{key}"


def cache_key(prefix: str, key: str) -> str:
    """The redis key of one cache entry."""
    return f"{prefix}:cache:{key}"


def cache_pattern(prefix: str, key_prefix: str) -> str:
    """SCAN MATCH pattern for every cache entry whose cache key starts with ``key_prefix``."""
    return glob_escape(cache_key(prefix, key_prefix)) + "*"


def limit_keys(prefix: str, name: str) -> tuple[str, str, str]:
    """The conf, held and waiting keys of one named limit (one hash tag: one cluster slot)."""
    head = f"{prefix}:limit:{{{name}}}:"
    return head + "conf", head + "held", head + "waiting"


def limits_key(prefix: str) -> str:
    """The set of every named limit's name."""
    return f"{prefix}:limits"


def glob_escape(text: str) -> str:
    """``text`` with redis glob characters escaped, for SCAN MATCH patterns."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
