"""The optional Leases capability, on the state backend (node ids) and the cache (cache keys).

Skipped with "optional capability" for backends that do not declare it.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from cascade_core.testing.plugin import run_concurrently


def _leases(backend):
    from cascade_core.plugin import supports_leases

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


def test_acquire_is_exclusive_and_reentrant(leased):
    a, b, c = names(3)
    assert leased.acquire_leases([a, b], "owner-1", 30) == {a, b}
    assert leased.acquire_leases([a, c], "owner-2", 30) == {c}
    assert leased.acquire_leases([a], "owner-1", 30) == {a}  # the holder may claim again
    leased.release_leases([a, b, c], "owner-1")  # c is owner-2's: left alone
    assert leased.acquire_leases([a, c], "owner-2", 30) == {a, c}
    leased.release_leases([a, c], "owner-2")


def test_odd_names(leased):
    prefix = uuid.uuid4().hex[:8]
    odd = [f"{prefix}/../up", f"{prefix}:" + "n" * 300, f"{prefix} \u00e9*?[]{{}}", f"{prefix}-Case", f"{prefix}-case"]
    assert leased.acquire_leases(odd, "owner-1", 30) == set(odd)
    assert leased.acquire_leases(odd, "owner-2", 30) == set()
    assert leased.renew_leases(odd, "owner-1", 30) == set(odd)
    leased.release_leases(odd[:1], "owner-1")
    assert leased.acquire_leases(odd, "owner-2", 30) == {odd[0]}
    leased.release_leases(odd, "owner-1")
    leased.release_leases(odd, "owner-2")


def test_leases_expire_and_renewal_keeps_them(leased):
    short, kept = names(2)
    assert leased.acquire_leases([short, kept], "owner-1", 0.5) == {short, kept}
    time.sleep(0.3)
    assert leased.renew_leases([kept], "owner-1", 5) == {kept}
    time.sleep(0.4)
    assert leased.renew_leases([short], "owner-1", 5) == set()  # expired: not renewed
    assert leased.acquire_leases([short, kept], "owner-2", 5) == {short}
    assert leased.renew_leases([kept], "owner-2", 5) == set()  # not the holder
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

    assert run_concurrently(claim, [f"owner-{i}" for i in range(8)]) == []
    assert len(winners) == 1
    leased.release_leases([name], winners[0])


def test_lease_holders_name_the_owner_of_each_live_lease(leased):
    if not callable(getattr(leased, "lease_holders", None)):
        pytest.skip("optional capability: no LeaseHolders (lease_holders)")
    try:
        leased.lease_holders([])
    except NotImplementedError:
        pytest.skip("optional capability: no LeaseHolders (its lease table has no holders())")
    a, b, short, free = names(4)
    assert leased.acquire_leases([a, short], "owner-1", 30) == {a, short}
    assert leased.acquire_leases([b], "owner-2:with:colons", 30) == {b}
    leased.renew_leases([short], "owner-1", 0.3)
    time.sleep(0.5)
    holders = leased.lease_holders([a, b, short, free, a])
    assert holders == {a: "owner-1", b: "owner-2:with:colons"}, (
        "lease_holders(names) must map each name held now to its owner's token exactly, and leave out free "
        "and expired names (docs/backends.md, 'After a crash')"
    )
    leased.release_leases([a], "owner-1")
    leased.release_leases([b], "owner-2:with:colons")
    assert leased.lease_holders([a, b]) == {}, "a released lease has no holder (docs/backends.md, 'After a crash')"
