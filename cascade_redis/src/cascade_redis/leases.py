"""Leases in redis: one key per claimed name, ``SET NX PX`` semantics, token-checked.

Each batch is one EVALSHA of a script that walks its keys, so claiming, renewing or releasing
the leases of a whole level of the graph is one round trip. Every key a script touches is
passed in KEYS, and on a cluster each call takes the keys of one slot only: a run's leases share
its hash tag (one call), cache locks are split per slot, in one pipeline per master. A process
never extends or frees a lease it no longer holds: every script compares the stored owner
token first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from cascade_core.plugin import CascadeError

from .connection import RedisConnection

# KEYS: lease keys; ARGV[1]: owner token; ARGV[2]: ttl in ms. Returns 1/0 per key.
ACQUIRE = """
local got = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2]); got[i] = 1
  elseif owner then
    got[i] = 0
  else
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2]); got[i] = 1
  end
end
return got
"""

RENEW = """
local kept = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2]); kept[i] = 1
  else
    kept[i] = 0
  end
end
return kept
"""

RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""

# Scripts are evaluated per batch of this many keys, to keep one script's run short.
BATCH = 1000


class RedisLeases:
    """The lease methods of a backend whose lease keys are ``key_of(name)``."""

    def __init__(self, connection: RedisConnection, key_of: Callable[[str], str]) -> None:
        self._connection = connection
        self._key_of = key_of

    def _eval(self, script: str, names: Sequence[str], *args: Any, write: bool) -> list[int]:
        """One flag per name of ``names`` (without repeats), from one script call per slot and batch."""
        keys = [self._key_of(name) for name in names]
        flags = [0] * len(keys)

        def queue(pipe: Any, groups: list[list[int]]) -> None:
            runner = pipe.register_script(script)
            for group in groups:
                for start in range(0, len(group), BATCH):
                    runner(keys=[keys[index] for index in group[start : start + BATCH]], args=list(args), client=pipe)

        for groups, replies in self._connection.per_master(keys, queue, by_slot=True, write=write):
            calls = ((group, start) for group in groups for start in range(0, len(group), BATCH))
            for (group, start), batch in zip(calls, replies, strict=True):
                for index, flag in zip(group[start : start + BATCH], batch or [], strict=False):
                    flags[index] = int(flag)
        return flags

    def acquire(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        wanted = list(dict.fromkeys(names))
        try:
            flags = self._eval(ACQUIRE, wanted, owner, max(1, int(ttl * 1000)), write=True)
        except CascadeError:
            # A claim that failed may still have been stored (a WAIT for min_replicas that timed out, a
            # reply lost on the way back): free it, so that what the caller was told holds.
            with contextlib.suppress(CascadeError):
                self._eval(RELEASE, wanted, owner, write=False)
            raise
        return {name for name, flag in zip(wanted, flags, strict=True) if flag}

    def renew(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        wanted = list(dict.fromkeys(names))
        flags = self._eval(RENEW, wanted, owner, max(1, int(ttl * 1000)), write=True)
        return {name for name, flag in zip(wanted, flags, strict=True) if flag}

    def holders(self, names: Sequence[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(names))
        owners = self._connection.mget([self._key_of(name) for name in wanted])
        return {name: owner.decode() for name, owner in zip(wanted, owners, strict=True) if owner is not None}

    def release(self, names: Sequence[str], owner: str) -> None:
        if names:
            self._eval(RELEASE, list(dict.fromkeys(names)), owner, write=False)
