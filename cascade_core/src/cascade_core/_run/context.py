"""What the plan, the scheduler and the records of one run share: the graph, the backends
and codecs, and one slot per node for its result, state and cache key."""

from __future__ import annotations

import threading
from typing import Any

from .._build.graph import Graph
from .._plugins.call import Encoding
from .._plugins.capabilities import StoreCapabilities
from .._store.blob_refs import code_of  # noqa: F401  (for the scheduler: one import line there)
from .._store.codec import Codec, state_key
from .._store.protocols import CacheBackend, StateBackend
from .node_table import DONE, FAILED, MISSING, PENDING, SKIPPED, NodeTable  # noqa: F401  (one import line for users)


class RunContext:
    """The backends, codecs and per-node slots of one run of one graph."""

    __slots__ = (
        "graph",
        "nodes",
        "run_id",
        "state",
        "cache",
        "state_caps",
        "cache_caps",
        "codec",
        "cache_codec",
        "encoding",
        "cache_max_payload",
        "blobs",
        "state_prefix",
        "table",
        "results",
        "status",
        "keys",
        "looked_up",
        "cancel",
    )

    def __init__(
        self,
        graph: Graph,
        run_id: str,
        state: StateBackend,
        cache: CacheBackend,
        secret_keys: list[bytes],
        cancel: threading.Event | None = None,
        blobs: Any = None,
        events: Any = None,
    ) -> None:
        self.graph = graph
        self.nodes = graph.nodes
        self.run_id = run_id
        self.state: StateBackend = state
        self.cache: CacheBackend = cache
        self.state_caps = state_caps = StoreCapabilities.of(state)
        self.cache_caps = cache_caps = StoreCapabilities.of(cache)
        self.codec = _codec(state_caps, secret_keys, blobs)
        self.cache_codec = _codec(cache_caps, secret_keys, blobs)
        self.encoding = Encoding(
            self.codec.serializer,
            state_caps.max_payload_bytes,
            state_caps.max_payload_option,
            *((blobs.key, blobs.threshold) if blobs is not None else ()),
        )
        self.cache_max_payload = cache_caps.max_payload_bytes
        self.blobs = blobs  # the run's BlobSpec (_blobs), or None: results are stored whole
        self.state_prefix = state_key(run_id, "")  # + node id: the storage key of a result
        # The node table owns every node's state; these aliases are its slots (they grow in place).
        self.table = table = NodeTable(graph.nodes, run_id, events)
        self.results, self.status, self.keys, self.looked_up = table.results, table.status, table.keys, table.looked_up
        self.cancel = cancel  # set when the awaiting arun() is cancelled

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


def _codec(caps: StoreCapabilities, secret_keys: list[bytes], blobs: Any) -> Codec:
    return Codec(caps.serializer, secret_keys, trusted_store=caps.trusted_store, blobs=blobs)
