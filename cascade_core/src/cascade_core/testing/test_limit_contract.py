"""The optional LimitStore capability of a state-backend factory: named limits (docs/backends.md).

Skipped with "optional capability" for factories that do not declare it. Every failure names the
rule broken and its section.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from cascade_core.testing.plugin import broken, run_concurrently
from cascade_core.testing.rules import (
    LIMIT_ATOMIC,
    LIMIT_EXPIRY,
    LIMIT_PAUSE,
    LIMIT_RATE,
    LIMIT_SETTINGS,
    LIMIT_SLOTS,
    LIMIT_UNKNOWN,
    LIMITS,
)

_METHODS = ("set_limit", "get_limits", "pause_limit", "delete_limit", "acquire_limit", "renew_limit", "release_limit")


@pytest.fixture
def limits(cascade_state_factory):
    if not all(callable(getattr(cascade_state_factory, name, None)) for name in _METHODS):
        pytest.skip("optional capability: no LimitStore (set_limit, acquire_limit, ...)")
    names: list[str] = []

    def new(concurrency=None, rate=None, per=1.0, burst=1) -> str:
        name = f"kit-limit-{uuid.uuid4().hex[:8]}"
        names.append(name)
        cascade_state_factory.set_limit(name, concurrency, rate, per, burst)
        return name

    yield cascade_state_factory, new
    for name in names:
        cascade_state_factory.delete_limit(name)


def test_settings_are_stored_shown_and_deleted(limits):
    store, new = limits
    name = new(concurrency=3, rate=5.0, per=60.0, burst=2)
    shown = store.get_limits([name]).get(name, {})
    got = {key: shown.get(key) for key in ("concurrency", "rate", "per", "burst", "paused", "holders")}
    expected = {"concurrency": 3, "rate": 5.0, "per": 60.0, "burst": 2, "paused": False, "holders": 0}
    assert got == expected, broken(f"get_limits returned {got} after set_limit, not {expected}", LIMIT_SETTINGS, LIMITS)
    every = store.get_limits()
    assert name in every, broken("get_limits() (every limit) left out one just set", LIMIT_SETTINGS, LIMITS)
    store.set_limit(name, 1, None, 1.0, 1)
    replaced = store.get_limits([name])[name]
    assert (replaced["concurrency"], replaced["rate"]) == (1, None), broken(
        f"set_limit again did not replace the settings: {replaced}", LIMIT_SETTINGS, LIMITS
    )
    assert store.delete_limit(name) is True and store.delete_limit(name) is False, broken(
        "delete_limit did not return True, then False", LIMIT_SETTINGS, LIMITS
    )
    assert name not in store.get_limits([name]), broken("a deleted limit is still shown", LIMIT_SETTINGS, LIMITS)


def test_unknown_limits_are_none(limits):
    store, _ = limits
    name = f"kit-limit-never-{uuid.uuid4().hex[:8]}"
    assert store.acquire_limit(name, "h", 30) is None, broken("acquire_limit of an unset limit", LIMIT_UNKNOWN, LIMITS)
    assert store.pause_limit(name, True) is False, broken("pause_limit of an unset limit", LIMIT_UNKNOWN, LIMITS)


def test_slots_are_taken_refused_and_freed(limits):
    store, new = limits
    name = new(concurrency=2)
    got = [store.acquire_limit(name, holder, 30) for holder in ("a", "b", "c")]
    assert got[:2] == [0.0, 0.0] and got[2] is not None and got[2] > 0, broken(
        f"three acquisitions of a limit of 2 slots returned {got}", LIMIT_SLOTS, LIMITS
    )
    assert store.acquire_limit(name, "a", 30) == 0.0, broken("a holder asking again was refused", LIMIT_SLOTS, LIMITS)
    shown = store.get_limits([name])[name]
    counted = (shown["holders"], shown["waiting"])
    assert counted == (2, 1), broken(f"get_limits counted (holders, waiting) as {counted}", LIMIT_SLOTS, LIMITS)
    store.release_limit(name, ["a"])
    assert store.acquire_limit(name, "c", 30) == 0.0, broken("a released slot was not free", LIMIT_SLOTS, LIMITS)


def test_a_paused_limit_refuses_until_resumed(limits):
    store, new = limits
    name = new(concurrency=5)
    assert store.pause_limit(name, True) is True
    refused = store.acquire_limit(name, "a", 30)
    assert refused is not None and refused > 0, broken(f"a paused limit returned {refused}", LIMIT_PAUSE, LIMITS)
    assert store.get_limits([name])[name]["paused"] is True, broken("get_limits shows it unpaused", LIMIT_PAUSE, LIMITS)
    store.pause_limit(name, False)
    assert store.acquire_limit(name, "a", 30) == 0.0, broken("a resumed limit refused", LIMIT_PAUSE, LIMITS)


def test_slots_expire_unless_renewed(limits):
    store, new = limits
    name = new(concurrency=1)
    assert store.acquire_limit(name, "kept", 0.6) == 0.0
    time.sleep(0.3)
    assert store.renew_limit(name, ["kept", "never"], 0.6) == {"kept"}, broken(
        "renew_limit did not return exactly the live holder", LIMIT_EXPIRY, LIMITS
    )
    time.sleep(0.4)  # 0.7 s after the acquisition, 0.4 s after the renewal
    refused = store.acquire_limit(name, "other", 30)
    assert refused is not None and refused > 0, broken("a renewed slot expired early", LIMIT_EXPIRY, LIMITS)
    time.sleep(0.35)
    assert store.acquire_limit(name, "other", 30) == 0.0, broken(
        "a slot not renewed was still held past its ttl", LIMIT_EXPIRY, LIMITS
    )


def test_the_rate_admits_a_burst_then_one_per_interval(limits):
    store, new = limits
    name = new(rate=10.0, per=1.0, burst=2)
    got = [store.acquire_limit(name, f"h{i}", 30) for i in range(3)]
    assert got[:2] == [0.0, 0.0] and got[2] is not None and 0 < got[2] <= 0.2, broken(
        f"three acquisitions at once under 10/s with a burst of 2 returned {got}", LIMIT_RATE, LIMITS
    )
    time.sleep(got[2] + 0.01)
    assert store.acquire_limit(name, "h2", 30) == 0.0, broken(
        "an acquisition after the wait it was told was refused", LIMIT_RATE, LIMITS
    )


def test_concurrent_acquisitions_never_exceed_the_slots(limits):
    store, new = limits
    name = new(concurrency=3)
    granted: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def ask(holder: str) -> None:
        start.wait()
        if store.acquire_limit(name, holder, 30) == 0.0:
            with lock:
                granted.append(holder)

    assert run_concurrently(ask, [f"t{i}" for i in range(12)]) == []
    assert len(granted) == 3, broken(f"{len(granted)} of 12 threads got a slot of 3", LIMIT_ATOMIC, LIMITS)
