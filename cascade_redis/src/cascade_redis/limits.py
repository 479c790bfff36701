"""Named limits in redis: three keys per limit under one hash tag (layout.py, docs/redis.md),
one script call per acquisition.

Every time is the server's (``TIME``), so drivers' clocks do not matter. The hash tag keeps a
limit's keys in one cluster slot: each acquisition, renewal or release is one EVALSHA on the
master of that slot. The rules are those of ``cascade_core``'s memory and sqlite stores
(docs/backends.md, "Limits"): a paused limit refuses, a full one refuses, the rate is GCRA.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .connection import RedisConnection
from .layout import limit_keys, limits_key

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
"""

# KEYS: conf, held, waiting. ARGV: holder, ttl (ms). Returns -1 (no such limit), 0 (taken) or
# the milliseconds to wait before asking again.
ACQUIRE = (
    _NOW
    + """
local c = redis.call('HMGET', KEYS[1], 'per', 'concurrency', 'rate', 'burst', 'paused', 'tat',
  'window_start', 'window_count', 'last_count')
if not c[1] then return -1 end
local holder, ttl = ARGV[1], tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZSCORE', KEYS[2], holder) then
  redis.call('ZADD', KEYS[2], now + ttl, holder)
  return 0
end
local per = tonumber(c[1]) * 1000
local tat = tonumber(c[6] or '0')
local wait = 0
if c[5] == '1' then
  wait = 250
elseif c[2] and redis.call('ZCARD', KEYS[2]) >= tonumber(c[2]) then
  wait = 50
elseif c[3] then
  local interval = per / tonumber(c[3])
  tat = math.max(tat, now)
  local allowance = (tonumber(c[4]) - 1) * interval
  if tat - now > allowance then
    wait = math.max(math.ceil(tat - allowance - now), 1)
  else
    tat = tat + interval
  end
end
if wait > 0 then
  redis.call('ZADD', KEYS[3], now + ttl, holder)
  return wait
end
redis.call('ZREM', KEYS[3], holder)
local ws, wc, lc = tonumber(c[7] or '0'), tonumber(c[8] or '0'), tonumber(c[9] or '0')
if now - ws >= per then
  if now - ws < 2 * per then lc = wc else lc = 0 end
  ws, wc = now, 0
end
redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat), 'window_start', string.format('%.3f', ws),
  'window_count', wc + 1, 'last_count', lc)
if c[2] then redis.call('ZADD', KEYS[2], now + ttl, holder) end
return 0
"""
)

# KEYS: held, waiting. ARGV: ttl (ms), holders... Returns 1/0 per holder (still live, extended).
RENEW = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local kept = {}
for i = 2, #ARGV do
  kept[i - 1] = 0
  for _, key in ipairs(KEYS) do
    local score = redis.call('ZSCORE', key, ARGV[i])
    if score and tonumber(score) > now then
      redis.call('ZADD', key, now + ttl, ARGV[i])
      kept[i - 1] = 1
    end
  end
end
return kept
"""
)

# KEYS: conf, held, waiting. Returns the conf as a flat list, the live counts and the time (ms).
STATUS = (
    _NOW
    + """
return {redis.call('HGETALL', KEYS[1]), redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf'),
  redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf'), tostring(now)}
"""
)

# KEYS: conf. ARGV: per, burst, concurrency or '', rate or ''.
SET = """
redis.call('HSET', KEYS[1], 'per', ARGV[1], 'burst', ARGV[2])
for i, field in ipairs({'concurrency', 'rate'}) do
  if ARGV[i + 2] == '' then redis.call('HDEL', KEYS[1], field) else redis.call('HSET', KEYS[1], field, ARGV[i + 2]) end
end
return 1
"""

# KEYS: conf. ARGV: '1' or '0'. Returns whether the limit exists.
PAUSE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'paused', ARGV[1])
return 1
"""


class RedisLimits:
    """The LimitStore of one redis deployment."""

    def __init__(self, connection: RedisConnection, prefix: str) -> None:
        self._connection = connection
        self._prefix = prefix
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _run(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """One EVALSHA of ``source`` on the master of ``keys`` (loaded on first use)."""

        def call(client: Any) -> Any:
            script = self._scripts.get(source)
            if script is None:
                with self._lock:
                    script = self._scripts.setdefault(source, client.register_script(source))
            return script(keys=list(keys), args=list(args), client=client)

        return self._connection.on(keys[0], call)

    def set_limit(self, name: str, concurrency: int | None, rate: float | None, per: float, burst: int) -> None:
        conf = limit_keys(self._prefix, name)[0]
        options = ("" if concurrency is None else concurrency, "" if rate is None else repr(float(rate)))
        self._run(SET, [conf], [repr(float(per)), burst, *options])
        registry = limits_key(self._prefix)
        self._connection.on(registry, lambda client: client.sadd(registry, name))

    def get_limits(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        from cascade_core.plugin import LimitRow, LimitRules

        if names is None:
            registry = limits_key(self._prefix)
            members = self._connection.on(registry, lambda client: client.smembers(registry))
            names = sorted(raw.decode() if isinstance(raw, bytes) else raw for raw in members)
        shown = {}
        for name in names:
            flat, held, waiting, now = self._run(STATUS, limit_keys(self._prefix, name), [])
            conf = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
            if "per" not in conf:
                continue  # deleted (or never set)
            seconds = float(now) / 1000
            row = LimitRow(
                concurrency=int(conf["concurrency"]) if "concurrency" in conf else None,
                rate=float(conf["rate"]) if "rate" in conf else None,
                per=float(conf["per"]),
                burst=int(conf["burst"]),
                paused=conf.get("paused") == "1",
                tat=float(conf.get("tat", 0)) / 1000,
                window=float(conf.get("window_start", 0)) / 1000,
                count=int(conf.get("window_count", 0)),
                last=int(conf.get("last_count", 0)),
            )
            status = LimitRules.status(row, {}, {}, seconds)
            status.update(holders=int(held), waiting=int(waiting))
            shown[name] = status
        return shown

    def pause_limit(self, name: str, paused: bool) -> bool:
        return bool(self._run(PAUSE, [limit_keys(self._prefix, name)[0]], ["1" if paused else "0"]))

    def delete_limit(self, name: str) -> bool:
        keys = limit_keys(self._prefix, name)
        registry = limits_key(self._prefix)
        self._connection.on(registry, lambda client: client.srem(registry, name))
        return bool(self._connection.on(keys[0], lambda client: client.delete(*keys)))

    def acquire_limit(self, name: str, holder: str, ttl: float) -> float | None:
        wait = int(self._run(ACQUIRE, limit_keys(self._prefix, name), [holder, max(1, int(ttl * 1000))]))
        return None if wait < 0 else wait / 1000

    def renew_limit(self, name: str, holders: Sequence[str], ttl: float) -> set[str]:
        if not holders:
            return set()
        keys = limit_keys(self._prefix, name)[1:]
        flags = self._run(RENEW, keys, [max(1, int(ttl * 1000)), *holders])
        return {holder for holder, flag in zip(holders, flags, strict=True) if int(flag)}

    def release_limit(self, name: str, holders: Sequence[str]) -> None:
        if holders:
            _, held, waiting = limit_keys(self._prefix, name)

            def release(client: Any) -> None:
                pipe = client.pipeline(transaction=False)
                pipe.zrem(held, *holders)
                pipe.zrem(waiting, *holders)
                pipe.execute()

            self._connection.on(held, release)
