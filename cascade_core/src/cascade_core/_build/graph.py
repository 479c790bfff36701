"""From lazy results to a graph: collect, order, resolve params, give every node its id.

Everything here is iterative (explicit stacks), so a chain of 50,000 calls or a
fan-out of 100,000 never meets Python's recursion limit.

Node ids come from Merkle hashes: ``digest(task name, policy part, inputs)`` where an
upstream input enters by its own hash and a param by its value. The same graph built in
another process gets the same ids, which is what lets a run resume. Two identical calls in
one graph (same task, same inputs) are two nodes: the second's id gets an occurrence suffix
in build order, so nothing collides silently. A task cached by INPUTS (and TASK_SOURCE) adds
its policy part (and version): a node whose upstreams are all such nodes has its cache key's
digest as its hash (``key_digest``; docs/concepts.md, "Node identity").
"""

from __future__ import annotations

import hashlib
import logging
import operator
import os
import struct
from collections.abc import Mapping
from typing import Any

from .._errors import CycleError, ParamError, TargetError
from .cache_policy import merkle_material
from .encoding import UnhashableInput, build_inputs
from .gc_pause import collection_paused
from .hashing import digest
from .lazy import condition_of
from .params import params_in, resolve_params
from .task import LazyResult, Task

log = logging.getLogger("cascade")


class Node:
    """One task call inside one run."""

    __slots__ = (
        "index", "lazy", "task", "id", "hash", "upstream", "data_deps", "inputs", "head", "tail", "key_digest",
        "arguments",
    )

    def __init__(self, index: int, lazy: LazyResult) -> None:
        self.index = index
        self.lazy = lazy
        self.task: Task = lazy.task
        self.id = ""  # its hash, with an occurrence suffix when an identical call came before it
        self.hash = ""  # the Merkle hash of its task and inputs: how it enters its downstream's inputs
        self.upstream: tuple[int, ...] = ()  # data and ordering dependencies, deduplicated
        self.data_deps: tuple[int, ...] = ()  # indexes of lazy results passed as data, in argument order
        self.inputs: bytes | None = None  # encoded inputs of a node without upstreams (reused for its cache key)
        # When its encoded inputs are `head` + the refs of data_deps + `tail` (lazy results only, one
        # list of them, or one among scalars), its format-1 cache key needs no walk of its arguments.
        self.head: bytes | None = None
        self.tail = b""
        self.key_digest: str | None = None  # its hash when that is its cache key's digest too
        self.arguments: Any = None  # its argument template (values.call_arguments), built when first bound


class Graph:
    """Nodes in a topological order (every node after all of its upstreams)."""

    __slots__ = ("nodes", "index_of", "targets", "target_shape", "params", "dynamic", "_downstream", "_built")

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.index_of: dict[int, int] = {}  # id(LazyResult) -> node index
        self.targets: list[int] = []
        self.target_shape: Any = None
        self.params: dict[str, Any] = {}
        self.dynamic = False  # whether a node maps, routes or runs on a condition (_build/dynamic.py)
        self._downstream: list[list[int]] | None = None
        self._built = _BuildState()  # what the id computation of later nodes needs of earlier ones

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def downstream(self) -> list[list[int]]:
        """The nodes that depend on each node, by index; built when first asked (a warm rerun never asks)."""
        links = self._downstream
        if links is None:
            links = self._downstream = [[] for _ in self.nodes]
            for node in self.nodes:
                index = node.index
                for up in node.upstream:
                    links[up].append(index)
        return links

    def node_of(self, lazy: LazyResult) -> Node:
        return self.nodes[self.index_of[id(lazy)]]

    def add(self, roots: list[LazyResult], namespace: str | None = None) -> range:
        """Nodes for ``roots`` and the calls they reach that the graph lacks, appended in a
        topological order after the nodes it has; returns their indexes.

        A node gets the id it would have had in a graph built whole (Merkle hashes over the
        same inputs), or with ``namespace`` (the id of the node that expands into them) an id
        from that and its hash: ``digest(namespace/hash#k)``, ``k`` counting equal calls among
        those added, so that equal calls of two expansions never depend on which came first.
        Params are the graph's: a new one is a ParamError. The downstream links, once built,
        are extended.
        """
        known = self.index_of
        start = len(self.nodes)
        with collection_paused():
            ordered, with_params = _order(roots, known)
            if with_params:
                declared = {param.name for lazy in ordered if lazy.has_params for param in params_in(lazy)}
                undeclared = declared - set(self.params)
                if undeclared:
                    name = sorted(undeclared)[0]
                    raise ParamError(
                        f"param {name!r} appears in nodes added during the run, but the run has no such "
                        f"param: declare it in the graph the run started with",
                        param=name,
                    )
            _build_nodes(self, ordered, namespace)
        links = self._downstream
        if links is not None:
            links.extend([] for _ in range(len(self.nodes) - start))
            for node in self.nodes[start:]:
                for up in node.upstream:
                    links[up].append(node.index)
        return range(start, len(self.nodes))


class _BuildState:
    """The part of node building that later nodes need: each node's ref, which hashes are not
    cache-key digests, how often each hash was seen, and per-task hashers."""

    __slots__ = ("refs", "unkeyed", "any_unkeyed", "seen", "primed_by_task", "keyed_tasks", "warned")

    def __init__(self) -> None:
        self.refs: list[bytes] = []  # b"r" + node hash, by index: how a node enters its downstream's inputs
        self.unkeyed = bytearray()  # nodes whose hash is not their cache key's digest
        self.any_unkeyed = False
        self.seen: dict[str, int] = {}  # node hash -> how many nodes have it
        self.primed_by_task: dict[Task, Any] = {}
        self.keyed_tasks: set[Task] = set()  # the tasks whose node hash can be their cache key
        self.warned = False


def build_graph(target: Any, params: Mapping[str, Any] | None = None) -> Graph:
    """Collect every node reachable from ``target``, order it, resolve params, assign ids."""
    graph = Graph()
    roots = _collect_targets(target)
    with collection_paused():
        ordered, with_params = _order(roots)
        graph.target_shape = target
        graph.params = resolve_params(ordered if with_params else (), params or {})
        _build_nodes(graph, ordered)
    graph.targets = [graph.index_of[id(lazy)] for lazy in roots]
    return graph


def _collect_targets(target: Any) -> list[LazyResult]:
    if isinstance(target, Task):
        raise TargetError(f"target {target.name!r} is a task, not a call of it: pass {target.name}(...) to run()")
    found: list[LazyResult] = []
    pending = [target]
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind is LazyResult:
            found.append(value)
        elif kind in (list, tuple):
            pending.extend(reversed(value))
        elif kind is dict:
            pending.extend(reversed(list(value.values())))
    if not found:
        raise TargetError(
            f"run() needs a lazy result (a task call) or a list/dict of them, got {type(target).__name__}: "
            "decorate the function with @task and pass its call"
        )
    return found


def _order(roots: list[LazyResult], known: Mapping[int, int] | None = None) -> tuple[list[LazyResult], bool]:
    """The reachable lazy results in a topological order, and whether any of them takes a Param;
    with ``known`` (id -> index of lazy results a graph has), only the others.

    A lazy result's data dependencies always exist before it (they are its arguments), so
    creation order is a topological order: collect and sort by creation number (the counter
    of the process that made them: the lazy results of one call of add() come from one
    process). Only ``.after()`` can point at a later node (and make a cycle); then a
    depth-first sort with cycle detection runs instead.
    """
    # Lazy results hash by identity (no __eq__): a set of them needs no id() call per edge.
    if known:
        roots = [root for root in roots if id(root) not in known]
    reachable: set[LazyResult] = set(roots)
    found = list(dict.fromkeys(roots))
    ordered_by_after = with_params = False
    for lazy in found:  # grows while it is walked; each lazy result enters it once
        edges = lazy.deps
        if lazy.ordering:
            ordered_by_after = True
            edges = edges + lazy.ordering
        for dep in edges:  # filtered here: a task with several upstreams shares them with others
            if dep not in reachable:
                reachable.add(dep)
                if known and id(dep) in known:
                    continue  # walked no further: the graph has it
                found.append(dep)
        if lazy.has_params:
            with_params = True
    if ordered_by_after:
        return _depth_first(roots, known or {}), with_params
    found.sort(key=_creation)  # C-level key: fast
    return found, with_params


_creation = operator.attrgetter("seq")


def _depth_first(roots: list[LazyResult], known: Mapping[int, int]) -> list[LazyResult]:
    """Iterative depth-first post-order with cycle detection; ``known`` lazy results are left out."""
    ordered: list[LazyResult] = []
    done: set[int] = set(known)
    on_stack: set[int] = set()
    for root in roots:
        if id(root) in done:
            continue
        stack: list[tuple[LazyResult, int]] = [(root, 0)]
        on_stack.add(id(root))
        while stack:
            lazy, position = stack[-1]
            edges = lazy.deps + lazy.ordering if lazy.ordering else lazy.deps
            if position < len(edges):
                stack[-1] = (lazy, position + 1)
                child = edges[position]
                key = id(child)
                if key in done:
                    continue
                if key in on_stack:
                    raise CycleError(_describe_cycle(stack, child))
                on_stack.add(key)
                stack.append((child, 0))
                continue
            stack.pop()
            on_stack.discard(id(lazy))
            done.add(id(lazy))
            ordered.append(lazy)
    return ordered


def _describe_cycle(stack: list[tuple[LazyResult, int]], repeated: LazyResult) -> str:
    names = [lazy.task.name for lazy, _ in stack]
    start = next(i for i, (lazy, _) in enumerate(stack) if lazy is repeated)
    loop = " -> ".join([*names[start:], repeated.task.name])
    return f"the graph has a cycle: {loop}; remove one of the .after() calls that closes it"


def _build_nodes(graph: Graph, ordered: list[LazyResult], namespace: str | None = None) -> None:
    """Make the nodes of ``ordered`` (a topological order) in one pass: links and ids.

    Upstream nodes come first, so every upstream id is known when a node's id is computed.
    This loop runs once per task call of every run: it is written for speed.
    """
    nodes, index_of, built = graph.nodes, graph.index_of, graph._built
    seen, primed_by_task, keyed_tasks = built.seen, built.primed_by_task, built.keyed_tasks
    refs, unkeyed, any_unkeyed, warned = built.refs, built.unkeyed, built.any_unkeyed, built.warned
    pack = struct.pack
    index_at, ref_at = index_of.__getitem__, refs.__getitem__
    if namespace is not None:
        seen = {}  # equal calls are counted among this expansion's only
    dynamic = graph.dynamic
    for index, lazy in enumerate(ordered, len(nodes)):
        node = Node(index, lazy)
        nodes.append(node)
        index_of[id(lazy)] = index
        deps, ordering, task = lazy.deps, lazy.ordering, lazy.task
        if deps or ordering:
            data_deps: tuple[int, ...]
            if len(deps) == 1:  # a chain: no comprehension
                data_deps = node.data_deps = (index_of[id(deps[0])],)
            else:
                data_deps = node.data_deps = tuple(map(index_at, map(id, deps)))
            if ordering:
                upstream = dict.fromkeys(data_deps)
                upstream.update(dict.fromkeys(index_of[id(dep)] for dep in ordering))
                node.upstream = tuple(upstream)
            else:
                # Deduplicated (a set is cheaper to build than the ordered dedup; duplicates are rare).
                unique = len(data_deps) < 2 or len({*data_deps}) == len(data_deps)
                node.upstream = data_deps if unique else tuple(dict.fromkeys(data_deps))
        primed = primed_by_task.get(task)
        if primed is None:  # a hasher primed with the task name, copied per node (cheaper than a new one)
            name = task.name.encode()
            material = merkle_material(task)
            if material is not None:
                keyed_tasks.add(task)
            if task.kind is not None:  # a map or a router
                dynamic = True
            primed = primed_by_task[task] = hashlib.blake2b(
                pack(">I", len(name)) + name + (material or b""), digest_size=16
            )
        # Its hash is its key's digest when its task's policy allows it and every upstream's hash is its key's.
        keyed = task in keyed_tasks and (not any_unkeyed or not any(map(unkeyed.__getitem__, node.data_deps)))
        if (ordering or lazy.has_params) and condition_of(lazy) is not None:
            dynamic = True
            keyed = False  # its key waits for its condition: it may not run at all
        try:
            inputs = build_inputs(node, ref_at, graph)  # sets node.head and node.tail when it can
            if not deps and not ordering:
                node.inputs = inputs
        except UnhashableInput:
            # Like dask.base.tokenize: an input we cannot encode gets a random token, so
            # the run works but this node (and what depends on it) cannot be resumed.
            inputs = os.urandom(16)
            keyed = False
            if not warned:
                warned = True
                log.warning(
                    "task %r has an input that cannot be hashed; it and its downstream will not be "
                    "resumed from stored state",
                    task.name,
                )
        hasher = primed.copy()
        hasher.update(inputs)
        node_id = hasher.hexdigest()  # = digest(task name prefix + inputs), inlined
        node.hash = node_id
        refs.append(b"r" + node_id.encode())
        if keyed:
            node.key_digest = node_id
        any_unkeyed = any_unkeyed or not keyed
        unkeyed.append(not keyed)
        occurrences = seen.get(node_id, 0)
        seen[node_id] = occurrences + 1
        if namespace is not None:
            node_id = digest(f"{namespace}/{node_id}#{occurrences}".encode())
        elif occurrences:  # an identical call: the same hash (and key), another id
            node_id = digest(f"{node_id}#{occurrences}".encode())
        node.id = node_id
    built.any_unkeyed, built.warned = any_unkeyed, warned
    graph.dynamic = dynamic
