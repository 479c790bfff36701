"""The optional Leases capability, on the state backend (node ids) and the cache (cache keys).

Skipped with "optional capability" for backends that do not declare it. Every failure names the
rule broken, in the words of docs/backends.md, and its section.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from cascade_core.plugin import supports_leases
from cascade_core.testing.plugin import broken, mismatch, run_concurrently
from cascade_core.testing.rules import ACQUIRE, CONTRACTS, CRASH, EXCLUSIVE, HOLDERS, LEASES, NAMES, OWNER_ONLY


def _leases(backend):
    if not supports_leases(backend):
        pytest.skip("optional capability: no Leases (acquire_leases, renew_leases, release_leases)")
    return backend


@pytest.fixture(params=["state", "cache"])
def leased(request):
    fixture = "cascade_state_backend" if request.param == "state" else "cascade_cache_backend"
    return _leases(request.getfixturevalue(fixture))


def names(count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:8]
    return [f"kit-lease-{prefix}-{i}" for i in range(count)]


def _named(got, letters: dict[str, str]):
    """Lease names (a set, or a dict of holders) as the test calls them (a, b, short), for a message."""
    if isinstance(got, dict):
        return {letters.get(name, name): owner for name, owner in got.items()}
    return {letters.get(name, name) for name in got} if isinstance(got, (set, frozenset)) else got


def test_acquire_is_exclusive_and_reentrant(leased):
    a, b, c = names(3)
    letters = {a: "a", b: "b", c: "c"}

    def claim(wanted, owner, expected, when, rule):
        got = leased.acquire_leases(wanted, owner, 30)
        assert got == expected, broken(
            f"acquire_leases([{', '.join(letters[name] for name in wanted)}], {owner!r}) {when} returned "
            + mismatch(_named(got, letters), _named(expected, letters)),
            rule,
            LEASES,
        )

    claim([a, b], "owner-1", {a, b}, "of free names", ACQUIRE)
    claim([a, c], "owner-2", {c}, "with a held by owner-1", EXCLUSIVE)
    claim([a], "owner-1", {a}, "by its holder", ACQUIRE)  # the holder may claim again
    leased.release_leases([a, b, c], "owner-1")  # c is owner-2's: left alone
    claim([a, c], "owner-2", {a, c}, "after owner-1 released a, b and c", f"{ACQUIRE}; {OWNER_ONLY}")
    leased.release_leases([a, c], "owner-2")


def test_odd_names(leased):
    prefix = uuid.uuid4().hex[:8]
    odd = [f"{prefix}/../up", f"{prefix}:" + "n" * 300, f"{prefix} \u00e9*?[]{{}}", f"{prefix}-Case", f"{prefix}-case"]
    got = leased.acquire_leases(odd, "owner-1", 30)
    assert got == set(odd), broken(
        f"acquire_leases of free odd names returned {mismatch(got, set(odd))}", NAMES, CONTRACTS
    )
    got = leased.acquire_leases(odd, "owner-2", 30)
    assert got == set(), broken(
        f"acquire_leases of odd names held by another owner returned {mismatch(got, set())}", EXCLUSIVE, LEASES
    )
    got = leased.renew_leases(odd, "owner-1", 30)
    assert got == set(odd), broken(
        f"renew_leases of odd names by their holder returned {mismatch(got, set(odd))}", NAMES, CONTRACTS
    )
    leased.release_leases(odd[:1], "owner-1")
    got = leased.acquire_leases(odd, "owner-2", 30)
    assert got == {odd[0]}, broken(
        f"after one odd name was released, acquire_leases by another owner returned {mismatch(got, {odd[0]})}",
        NAMES,
        CONTRACTS,
    )
    leased.release_leases(odd, "owner-1")
    leased.release_leases(odd, "owner-2")


def test_leases_expire_and_renewal_keeps_them(leased):
    short, kept = names(2)
    letters = {short: "short", kept: "kept"}

    def check(got, expected, what, rule):
        assert got == expected, broken(
            f"{what} returned {mismatch(_named(got, letters), _named(expected, letters))}", rule, LEASES
        )

    check(leased.acquire_leases([short, kept], "owner-1", 0.5), {short, kept}, "acquire_leases of free names", ACQUIRE)
    time.sleep(0.3)
    check(leased.renew_leases([kept], "owner-1", 5), {kept}, "renew_leases by the holder of a live lease", OWNER_ONLY)
    time.sleep(0.4)
    check(leased.renew_leases([short], "owner-1", 5), set(), "renew_leases of a lease past its ttl", EXCLUSIVE)
    check(
        leased.acquire_leases([short, kept], "owner-2", 5),
        {short},
        "acquire_leases by another owner of an expired and a renewed lease",
        f"{ACQUIRE}; {EXCLUSIVE}",
    )
    check(leased.renew_leases([kept], "owner-2", 5), set(), "renew_leases by an owner not the holder", OWNER_ONLY)
    leased.release_leases([short], "owner-2")
    leased.release_leases([kept], "owner-1")


def test_one_winner_among_concurrent_claimants(leased):
    (name,) = names(1)
    winners: list[str] = []
    start = threading.Barrier(8)

    def claim(owner: str) -> None:
        start.wait()
        if leased.acquire_leases([name], owner, 30):
            winners.append(owner)

    errors = run_concurrently(claim, [f"owner-{i}" for i in range(8)])
    assert errors == [], broken(f"8 concurrent acquire_leases raised {errors!r}", EXCLUSIVE, LEASES)
    assert len(winners) == 1, broken(f"8 concurrent claimants of one free name, {len(winners)} won", EXCLUSIVE, LEASES)
    leased.release_leases([name], winners[0])


def test_lease_holders_name_the_owner_of_each_live_lease(leased):
    if not callable(getattr(leased, "lease_holders", None)):
        pytest.skip("optional capability: no LeaseHolders (lease_holders)")
    try:
        leased.lease_holders([])
    except NotImplementedError:
        pytest.skip("optional capability: no LeaseHolders (its lease table has no holders())")
    a, b, short, free = names(4)
    letters = {a: "a", b: "b", short: "short", free: "free"}
    assert leased.acquire_leases([a, short], "owner-1", 30) == {a, short}, broken(
        "acquire_leases of free names did not claim them all", ACQUIRE, LEASES
    )
    assert leased.acquire_leases([b], "owner-2:with:colons", 30) == {b}, broken(
        "acquire_leases of a free name did not claim it", ACQUIRE, LEASES
    )
    leased.renew_leases([short], "owner-1", 0.3)
    time.sleep(0.5)
    holders = leased.lease_holders([a, b, short, free, a])
    expected = {a: "owner-1", b: "owner-2:with:colons"}
    assert holders == expected, broken(
        "lease_holders of a, b, an expired and a free name returned "
        + mismatch(_named(holders, letters), _named(expected, letters)),
        f"{HOLDERS}, each owner's token exactly",
        CRASH,
    )
    leased.release_leases([a], "owner-1")
    leased.release_leases([b], "owner-2:with:colons")
    holders = leased.lease_holders([a, b])
    assert holders == {}, broken(f"lease_holders of released leases returned {holders!r}", HOLDERS, CRASH)
