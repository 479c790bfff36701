"""Cache policies: which facts about a task call make up its cache key.

Policies compose with ``+`` in the spirit of Prefect's ``INPUTS + TASK_SOURCE``::

    @task(cache=INPUTS + TASK_SOURCE + RUN_ID)   # cache only within one run

Every key also starts with the task's name, so the entries of one task can be found
(and cleared) by prefix: ``<task name>:<digest>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .._errors import DefinitionError
from .hashing import digest


class KeyContext:
    """What a policy may look at: the task, a digest of its inputs, the run id."""

    __slots__ = ("task", "inputs_digest", "run_id")

    def __init__(self, task: Any, inputs_digest: str, run_id: str) -> None:  # task: a cascade_core.Task
        self.task = task
        self.inputs_digest = inputs_digest
        self.run_id = run_id


class CachePolicy:
    """Base class: contributes parts to a cache key. Add policies with ``+``."""

    name = "policy"

    def parts(self, context: KeyContext) -> tuple[str, ...]:
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return CompoundPolicy((*_members(self), *_members(other)))

    def __repr__(self) -> str:
        return self.name


class CompoundPolicy(CachePolicy):
    """Several policies at once; duplicates are dropped, order does not matter."""

    def __init__(self, members: tuple[CachePolicy, ...]) -> None:
        unique: dict[str, CachePolicy] = {}
        for member in members:
            unique.setdefault(member.name, member)
        self.members = tuple(unique[name] for name in sorted(unique))
        self.name = " + ".join(member.name for member in self.members)

    def parts(self, context: KeyContext) -> tuple[str, ...]:
        return tuple(part for member in self.members for part in member.parts(context))


def _members(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.members if isinstance(policy, CompoundPolicy) else (policy,)


class _Inputs(CachePolicy):
    name = "INPUTS"

    def parts(self, context: KeyContext) -> tuple[str, ...]:
        return ("inputs", context.inputs_digest)


class _InputValues(CachePolicy):
    name = "INPUT_VALUES"

    def parts(self, context: KeyContext) -> tuple[str, ...]:
        return ("values", context.inputs_digest)


class _TaskSource(CachePolicy):
    name = "TASK_SOURCE"

    def parts(self, context: KeyContext) -> tuple[str, ...]:
        return ("source", context.task.code_version)


class _RunId(CachePolicy):
    name = "RUN_ID"

    def parts(self, context: KeyContext) -> tuple[str, ...]:
        return ("run", context.run_id)


INPUTS: CachePolicy = _Inputs()
"""The task's input values (upstream results enter through their own cache keys or values)."""
TASK_SOURCE: CachePolicy = _TaskSource()
"""The task's code version: ``version=`` when given, else the digest of its code and the user code it calls."""
RUN_ID: CachePolicy = _RunId()
"""The run id: entries are reused only within one run."""
INPUT_VALUES: CachePolicy = _InputValues()
"""As INPUTS, but every upstream enters by the hash of its value, not by its key (early cutoff:
an upstream that reran to the same value leaves this key as it was)."""
DEFAULT: CachePolicy = INPUTS + TASK_SOURCE
"""What ``cache=True`` means."""
_BUILTIN_POLICIES = (_Inputs, _TaskSource, _RunId, _InputValues)
_BY_INPUTS = (_Inputs, _InputValues)


_PLACEHOLDER = "\0inputs digest\0"  # cannot be a hex digest; splits a key's material around the inputs part


def key_maker(task: Any, run_id: str) -> Callable[[bytes], str]:
    """A function from a call's encoded inputs to its cache key ``<task name>:<digest>``.

    The key is ``digest("\\0".join(policy parts))``. When the policy is built only from
    INPUTS, TASK_SOURCE and RUN_ID, every part but the inputs digest is fixed for the run,
    so the material around it is joined once here and each key costs two hashes.
    """
    policy = task.cache_policy
    assert policy is not None
    prefix = f"{task.name}:"
    members = _members(policy)
    if all(type(member) in _BUILTIN_POLICIES for member in members):
        material = "\0".join(policy.parts(KeyContext(task, _PLACEHOLDER, run_id)))
        pieces = material.split(_PLACEHOLDER)
        if not any(type(member) in _BY_INPUTS for member in members):  # one key for every call in this run
            key = prefix + digest(material.encode())
            return lambda inputs: key
        if len(pieces) == 2:  # (a version or run id holding the placeholder takes the general path)
            # Hashers copied from primed ones: cheaper than building two per key.
            empty = hashlib.blake2b(digest_size=16)
            primed = hashlib.blake2b(pieces[0].encode(), digest_size=16)
            after = pieces[1].encode()

            def template_key(inputs: bytes) -> str:
                inputs_digest = empty.copy()
                inputs_digest.update(inputs)
                material = primed.copy()
                material.update(inputs_digest.hexdigest().encode() + after)
                return prefix + material.hexdigest()

            return template_key

    def policy_key(inputs: bytes) -> str:
        parts = policy.parts(KeyContext(task, digest(inputs), run_id))
        return prefix + digest("\0".join(parts).encode())

    return policy_key


def by_values(task: Any) -> bool:
    """Whether a task's upstreams enter its cache key by their values' hashes (INPUT_VALUES)."""
    policy = task.cache_policy
    return policy is not None and any(type(member) is _InputValues for member in _members(policy))


def merkle_material(task: Any) -> bytes | None:
    """What a task's policy adds to its node's Merkle hash when that hash is its cache key too.

    That is the case for a policy of INPUTS, optionally with TASK_SOURCE (neither needs the run
    id, so the graph's hash of a node can be its key): the material is the policy's parts, the
    version included, around the inputs. Returns None for any other policy, or none.
    """
    policy = task.cache_policy
    if policy is None:
        return None
    members = _members(policy)
    kinds = {type(member) for member in members}
    if _Inputs not in kinds or not kinds <= {_Inputs, _TaskSource}:
        return None
    material = "\0".join(policy.parts(KeyContext(task, _PLACEHOLDER, ""))).encode()
    return b"\0" + len(material).to_bytes(4, "big") + material


def resolve_policy(cache: object, task_name: str) -> CachePolicy | None:
    """Turn a task's ``cache=`` option into a policy, or None when it does not cache."""
    if cache is False or cache is None:
        return None
    if cache is True:
        return DEFAULT
    if isinstance(cache, CachePolicy):
        return cache
    raise DefinitionError(
        f"task {task_name!r}: cache= takes True, False or a cache policy such as INPUTS + TASK_SOURCE, got {cache!r}"
    )
