"""cascade_core.testing's helpers for tests: frozen_clock/advance move lease and TTL time without
sleeping; reset_process_state and isolated_process_state forget what a process keeps between runs."""

from __future__ import annotations

import time

import pytest

import cascade_core as cs
from cascade_core import _clock
from cascade_core.backends.memory import LeaseTable, named_state_store
from cascade_core.testing.clock import advance, frozen_clock
from cascade_core.testing.state import isolated_process_state, reset_process_state


def test_a_frozen_clock_stands_still_until_advanced_and_is_given_back():
    with frozen_clock() as frozen:
        wall, mono = _clock.wall(), _clock.monotonic()
        time.sleep(0.01)  # real time passes; frozen time does not
        assert (_clock.wall(), _clock.monotonic()) == (wall, mono)
        advance(2.5)
        assert (_clock.wall(), _clock.monotonic()) == (wall + 2.5, mono + 2.5)
        with pytest.raises(ValueError, match="forward only"):
            frozen.advance(-1)
        with pytest.raises(RuntimeError, match="already active"), frozen_clock():
            pass
    assert _clock.wall is time.time and _clock.monotonic is time.monotonic
    with pytest.raises(RuntimeError, match="frozen_clock"):
        advance(1)


def test_memory_leases_and_cache_ttls_follow_the_clock():
    table, cache = LeaseTable(), cs.MemoryCacheBackend()
    with frozen_clock() as frozen:
        assert table.acquire(["n"], "a", 10) == {"n"}
        cache.set_many({"k": b"v"}, ttl=10)
        frozen.advance(9.99)
        assert table.acquire(["n"], "b", 10) == set() and cache.get_many(["k"]) == {"k": b"v"}
        frozen.advance(0.01)
        assert table.acquire(["n"], "b", 10) == {"n"} and cache.get_many(["k"]) == {}


def test_reset_forgets_memory_stores_and_a_clock_left_frozen():
    @cs.task(name="helpers.one")
    def one():
        return 1

    cs.run(one(), state_backend="memory://kept", run_id="r")
    assert named_state_store("kept").list_runs()
    frozen = frozen_clock()
    frozen.__enter__()  # left frozen, as a test that failed half way could leave it
    reset_process_state()
    assert _clock.wall is time.time
    with pytest.raises(RuntimeError, match="frozen_clock"):
        advance(1)  # no clock is active any more
    assert named_state_store("kept").list_runs() == []


def test_isolation_undoes_the_blocks_registrations_and_keeps_earlier_ones():
    earlier, inner = object(), object()
    cs.register_backend("helpers-earlier", earlier)
    try:
        with isolated_process_state():
            cs.register_backend("helpers-inner", inner)
        with pytest.raises(cs.PluginError):
            cs.register_backend("helpers-earlier", inner)  # still there: a different provider is refused
        cs.register_backend("helpers-inner", earlier)  # gone: free to take
    finally:
        cs.unregister_backend("helpers-earlier")
        cs.unregister_backend("helpers-inner")
