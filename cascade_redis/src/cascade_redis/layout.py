"""The names of everything cascade-redis stores: a contract, documented in docs/redis.md.

::

    <prefix>:run:{<run id>}:results   hash    node id -> payload bytes
    <prefix>:run:{<run id>}:skipped   hash    node id -> reason
    <prefix>:run:{<run id>}:meta      hash    created, updated, status, ...
    <prefix>:run:{<run id>}:tasks     hash    node id -> JSON task record (cascade runs show)
    <prefix>:cache:<cache key>        string  payload bytes
    <prefix>:lease:{<run id>}:<node>  string  owner token of a node lease (expires)
    <prefix>:lock:<cache key>         string  owner token of a cache lock (expires)

The braces are a redis hash tag: a run's four keys and all its leases live in one cluster
slot; cache entries and their locks spread over every slot.
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


def glob_escape(text: str) -> str:
    """``text`` with redis glob characters escaped, for SCAN MATCH patterns."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
