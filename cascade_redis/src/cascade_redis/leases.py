"""Leases in redis: one key per claimed name, ``SET NX PX`` semantics, token-checked.

Each batch is one EVALSHA of a script that walks its keys, so claiming, renewing or releasing
the leases of a whole level of the graph is one round trip. A process never extends or frees
a lease it no longer holds: every script compares the stored owner token first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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

    def _eval(self, script: str, names: Sequence[str], *args: Any) -> list[int]:
        wanted = list(dict.fromkeys(names))
        results: list[int] = []

        def call(client: Any) -> list[int]:
            runner = client.register_script(script)
            pipe = client.pipeline(transaction=False)
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start : start + BATCH]
                runner(keys=[self._key_of(name) for name in chunk], args=list(args), client=pipe)
            return [flag for batch in pipe.execute() for flag in (batch or [])]

        if wanted:
            results = self._connection.run(call)
        return [int(flag) for flag in results] if results else [0] * len(wanted)

    def acquire(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        wanted = list(dict.fromkeys(names))
        flags = self._eval(ACQUIRE, wanted, owner, max(1, int(ttl * 1000)))
        return {name for name, flag in zip(wanted, flags, strict=False) if flag}

    def renew(self, names: Sequence[str], owner: str, ttl: float) -> set[str]:
        wanted = list(dict.fromkeys(names))
        flags = self._eval(RENEW, wanted, owner, max(1, int(ttl * 1000)))
        return {name for name, flag in zip(wanted, flags, strict=False) if flag}

    def release(self, names: Sequence[str], owner: str) -> None:
        if names:
            self._eval(RELEASE, names, owner)
