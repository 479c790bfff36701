"""The CacheBackend contract (and the optional CacheCatalog), for the backend of ``--cascade-uri``.

Caches may be shared (``memory://`` is process-wide, a server is shared by machines), so
every test works under its own key prefix. Every failure names the rule broken, in the words
of docs/backends.md, and its section.
"""

from __future__ import annotations

import time
import uuid

import pytest

from cascade_core.plugin import CacheCatalog, EntryCount
from cascade_core.testing.plugin import (
    broken,
    check_declared_attributes,
    mismatch,
    open_cache_backend,
    run_concurrently,
)
from cascade_core.testing.rules import (
    BATCHES,
    BYTES,
    CACHE,
    CACHE_CLOSE,
    CAPABILITIES,
    CLEAR,
    CONTRACTS,
    COUNT_ENTRIES,
    DELETE_MANY,
    ENFORCED,
    EXPIRED,
    GET_MANY,
    NAMES,
    PERSISTS,
    SET_MANY,
    THREADS,
    TTL_ZERO,
)

TTL = 0.5  # short enough to keep the kit fast, long enough for a slow CI machine to read before expiry


@pytest.fixture
def ns(cascade_cache_backend):
    """A key prefix no other test uses; the entries under it are cleared after the test when possible."""
    prefix = f"kit-{uuid.uuid4().hex}/"
    yield prefix
    clear = getattr(cascade_cache_backend, "clear", None)
    if callable(clear):
        clear(prefix)


def _diff(got, expected, ns: str) -> str:
    """``mismatch`` with the test's key prefix taken off the keys."""

    def bare(entries):
        return {key.removeprefix(ns): value for key, value in entries.items()} if isinstance(entries, dict) else entries

    return mismatch(bare(got), bare(expected))


def test_round_trip_varied_values(cascade_cache_backend, ns):
    items = {ns + "empty": b"", ns + "nul": b"\x00", ns + "binary": bytes(range(256)) * 4, ns + "bad-utf8": b"\xff\xfe"}
    cascade_cache_backend.set_many(items)
    got = cascade_cache_backend.get_many(list(items))
    assert got == items, broken(
        f"get_many returned values other than set_many stored ({_diff(got, items, ns)})", BYTES, CONTRACTS
    )
    kinds = sorted({type(value).__name__ for value in got.values()})
    assert all(type(value) is bytes for value in got.values()), broken(
        f"get_many returned values of type {', '.join(kinds)}", BYTES, CONTRACTS
    )


def test_large_value(cascade_cache_backend, ns):
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB
    cascade_cache_backend.set_many({ns + "big": big})
    got = cascade_cache_backend.get_many([ns + "big"]).get(ns + "big")
    same = got == big  # a bool: pytest would diff 5 MiB of bytes otherwise (minutes, with CI set)
    assert same, broken(
        f"get_many of a 5 MiB value returned {len(got) if got is not None else 'no'} bytes other than the "
        f"{len(big)} bytes set_many stored",
        BYTES,
        CONTRACTS,
    )


def test_missing_keys_are_left_out(cascade_cache_backend, ns):
    for keys, expected in (([ns + "nope"], {}), ([ns + "nope", ns + "a"], {ns + "a": b"1"}), ([], {})):
        if expected:
            cascade_cache_backend.set_many(expected)
        got = cascade_cache_backend.get_many(keys)
        assert got == expected, broken(
            f"get_many of {len(keys)} keys, {len(expected)} of them set, returned {_diff(got, expected, ns)}",
            GET_MANY,
            CACHE,
        )


def test_get_many_accepts_any_iterable(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"1"})
    expected = {ns + "a": b"1"}
    got = cascade_cache_backend.get_many(key for key in [ns + "a", ns + "b"])
    assert got == expected, broken(
        f"get_many of a generator returned {_diff(got, expected, ns)}", "get_many(keys) takes any iterable", CACHE
    )
    got = cascade_cache_backend.get_many([ns + "a", ns + "a"])
    assert got == expected, broken(f"get_many of a key twice returned {_diff(got, expected, ns)}", GET_MANY, CACHE)


def test_many_keys_in_one_batch(cascade_cache_backend, ns):
    items = {f"{ns}{i}": str(i).encode() for i in range(3000)}
    cascade_cache_backend.set_many(items)
    got = cascade_cache_backend.get_many(list(items))
    assert got == items, broken(
        f"get_many of a batch of 3,000 returned {_diff(got, items, ns)}", f"{BATCHES}; {GET_MANY}", CACHE
    )
    deleted = cascade_cache_backend.delete_many(list(items))
    assert deleted == len(items), broken(f"delete_many of 3,000 stored keys returned {deleted!r}", DELETE_MANY, CACHE)
    got = cascade_cache_backend.get_many(list(items))
    assert got == {}, broken(f"after delete_many, get_many still returned {len(got)} of 3,000 keys", DELETE_MANY, CACHE)


def test_odd_keys(cascade_cache_backend, ns):
    odd = ["with space", "unicode-\u00e9\u4e2d", "100%_done", "a:b/c", "*?[]{}", "../up", "a//b", "k" * 300]
    odd += ["Case", "case"]
    items = {ns + key: key.encode() for key in odd}
    cascade_cache_backend.set_many(items)
    got = cascade_cache_backend.get_many(list(items))
    assert got == items, broken(f"get_many of odd keys returned {_diff(got, items, ns)}", NAMES, CONTRACTS)
    deleted = cascade_cache_backend.delete_many([ns + "Case", ns + "k" * 300])
    assert deleted == 2, broken(f"delete_many of 2 stored odd keys returned {deleted!r}", NAMES, CONTRACTS)
    got, expected = cascade_cache_backend.get_many([ns + "case", ns + "k" * 299]), {ns + "case": b"case"}
    assert got == expected, broken(
        f"after deleting 'Case' and 'k' * 300, get_many of 'case' and 'k' * 299 returned {_diff(got, expected, ns)}",
        NAMES,
        CONTRACTS,
    )


def test_overwrite(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"old", ns + "b": b"kept"})
    cascade_cache_backend.set_many({ns + "a": b"new"})
    got, expected = cascade_cache_backend.get_many([ns + "a", ns + "b"]), {ns + "a": b"new", ns + "b": b"kept"}
    assert got == expected, broken(
        f"after a second set_many, get_many returned {_diff(got, expected, ns)}", SET_MANY, CACHE
    )


def test_delete_many_counts_what_existed(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"1", ns + "b": b"2", ns + "c": b"3"})
    deleted = cascade_cache_backend.delete_many([ns + "a", ns + "b", ns + "missing"])
    assert deleted == 2, broken(
        f"delete_many of 2 stored keys and a missing one returned {deleted!r}", DELETE_MANY, CACHE
    )
    got = cascade_cache_backend.get_many([ns + "a", ns + "b", ns + "c"])
    assert got == {ns + "c": b"3"}, broken(
        f"after delete_many of a and b, get_many returned {_diff(got, {ns + 'c': b'3'}, ns)}", DELETE_MANY, CACHE
    )
    counts = [
        cascade_cache_backend.delete_many([ns + "a"]),
        cascade_cache_backend.delete_many([ns + "c", ns + "c"]),
        cascade_cache_backend.delete_many([]),
    ]
    assert counts == [0, 1, 0], broken(
        f"delete_many of a deleted key, of a stored key twice and of none returned {counts!r}", DELETE_MANY, CACHE
    )


def test_ttl_expiry(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "short": b"1", ns + "short2": b"2"}, ttl=TTL)
    cascade_cache_backend.set_many({ns + "long": b"3"}, ttl=3600)
    got, expected = (
        cascade_cache_backend.get_many([ns + "short", ns + "short2"]),
        {ns + "short": b"1", ns + "short2": b"2"},
    )
    assert got == expected, broken(
        f"get_many of entries set {TTL:g} s before they expire returned {_diff(got, expected, ns)}", GET_MANY, CACHE
    )
    time.sleep(TTL + 0.4)
    got = cascade_cache_backend.get_many([ns + "short", ns + "short2", ns + "long"])
    assert got == {ns + "long": b"3"}, broken(
        f"get_many after {TTL:g} s returned {_diff(got, {ns + 'long': b'3'}, ns)}", EXPIRED, CACHE
    )
    cascade_cache_backend.set_many({ns + "short": b"again"})  # an expired key can be set again
    got = cascade_cache_backend.get_many([ns + "short"])
    assert got == {ns + "short": b"again"}, broken(
        f"an expired key set again came back {_diff(got, {ns + 'short': b'again'}, ns)}", SET_MANY, CACHE
    )


def test_ttl_zero_or_less_is_expired_on_arrival(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "zero": b"old", ns + "negative": b"old", ns + "kept": b"old"})
    cascade_cache_backend.set_many({ns + "zero": b"new"}, ttl=0)
    cascade_cache_backend.set_many({ns + "negative": b"new"}, ttl=-1)
    # Neither the new value nor the one it replaced is returned.
    got = cascade_cache_backend.get_many([ns + "zero", ns + "negative", ns + "kept"])
    assert got == {ns + "kept": b"old"}, broken(
        f"after set_many with ttl=0 and ttl=-1, get_many returned {_diff(got, {ns + 'kept': b'old'}, ns)}",
        TTL_ZERO,
        CACHE,
    )


def test_expired_entries_are_gone_after_delete_and_clear(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "d/old": b"1", ns + "c/old": b"1"}, ttl=TTL)
    cascade_cache_backend.set_many({ns + "d/live": b"2", ns + "c/live": b"2"})
    time.sleep(TTL + 0.4)
    # Only the live entry is counted: an expired one is gone, purged or not (docs/backends.md).
    deleted = cascade_cache_backend.delete_many([ns + "d/old", ns + "d/live", ns + "d/missing"])
    assert deleted == 1, broken(
        f"delete_many of an expired, a live and a missing key returned {deleted!r}", EXPIRED, CACHE
    )
    got = cascade_cache_backend.get_many([ns + "d/old", ns + "d/live"])
    assert got == {}, broken(f"after delete_many, get_many returned {_diff(got, {}, ns)}", EXPIRED, CACHE)
    if callable(getattr(cascade_cache_backend, "clear", None)):
        cleared = cascade_cache_backend.clear(ns + "c/")
        assert cleared == 1, broken(f"clear of an expired and a live entry returned {cleared!r}", EXPIRED, CACHE)
        got = cascade_cache_backend.get_many([ns + "c/old", ns + "c/live"])
        assert got == {}, broken(f"after clear, get_many returned {_diff(got, {}, ns)}", EXPIRED, CACHE)
        cleared = cascade_cache_backend.clear(ns + "c/")
        assert cleared == 0, broken(f"a second clear of one prefix returned {cleared!r}", EXPIRED, CACHE)


def test_overwrite_replaces_ttl(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"1"}, ttl=TTL)
    cascade_cache_backend.set_many({ns + "a": b"2"}, ttl=3600)
    time.sleep(TTL + 0.4)
    got = cascade_cache_backend.get_many([ns + "a"])
    assert got == {ns + "a": b"2"}, broken(
        f"an entry set again with ttl=3600 came back {_diff(got, {ns + 'a': b'2'}, ns)} after its first ttl",
        SET_MANY,
        CACHE,
    )


def test_persists_across_instances(cascade_uri, cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"kept"})
    other = open_cache_backend(cascade_uri)
    try:
        got = other.get_many([ns + "a"])
        assert got == {ns + "a": b"kept"}, broken(
            f"a second cache of the URI read {_diff(got, {ns + 'a': b'kept'}, ns)}", PERSISTS, ENFORCED
        )
    finally:
        other.close()


def test_close_twice_is_harmless(cascade_uri, cascade_cache_backend, ns):
    own = open_cache_backend(cascade_uri)
    own.set_many({ns + "a": b"1"})
    own.close()
    try:
        own.close()
    except Exception as exc:
        pytest.fail(broken(f"a second close() raised {type(exc).__name__}: {exc}", CACHE_CLOSE, CACHE))
    got = cascade_cache_backend.get_many([ns + "a"])
    assert got == {ns + "a": b"1"}, broken(
        f"after another cache of the URI closed, get_many returned {_diff(got, {ns + 'a': b'1'}, ns)}",
        CACHE_CLOSE,
        CACHE,
    )


def test_declared_attributes(cascade_cache_backend):
    check_declared_attributes(cascade_cache_backend)


def test_concurrent_writers_lose_nothing(cascade_uri, cascade_cache_backend, ns):
    def work(worker: int) -> None:
        own = open_cache_backend(cascade_uri)
        try:
            for i in range(20):
                target = cascade_cache_backend if i % 2 else own
                target.set_many({f"{ns}{worker}-{i}": f"{worker}:{i}".encode()})
        finally:
            own.close()

    errors = run_concurrently(work, list(range(8)))
    assert not errors, broken(f"8 threads writing the cache raised {errors!r}", THREADS, CONTRACTS)
    keys = [f"{ns}{worker}-{i}" for worker in range(8) for i in range(20)]
    got = cascade_cache_backend.get_many(keys)
    assert set(got) == set(keys), broken(
        f"8 threads writing the cache left {len(got)} of {len(keys)} entries", THREADS, CONTRACTS
    )
    assert got[f"{ns}5-11"] == b"5:11", broken(
        f"8 threads writing the cache left {got[f'{ns}5-11']!r} for b'5:11'", THREADS, CONTRACTS
    )


# -- optional: CacheCatalog --------------------------------------------------------


def _catalog(cache):
    if not isinstance(cache, CacheCatalog):
        pytest.skip("optional capability: the cache has no CacheCatalog (clear)")
    return cache


def test_clear_prefix(cascade_cache_backend, ns):
    _catalog(cascade_cache_backend)
    cascade_cache_backend.set_many(
        {ns + "a_1": b"1", ns + "a_2": b"2", ns + "ab": b"3", ns + "A_1": b"4", ns + "b": b"5"}
    )
    # '_' and '%' are literal characters in a prefix, not wildcards, and case matters.
    cleared = cascade_cache_backend.clear(ns + "a_")
    assert cleared == 2, broken(f"clear('a_') of a_1, a_2, ab, A_1 and b returned {cleared!r}", CLEAR, CAPABILITIES)
    got = cascade_cache_backend.get_many([ns + "a_1", ns + "a_2", ns + "ab", ns + "A_1", ns + "b"])
    expected = {ns + "ab": b"3", ns + "A_1": b"4", ns + "b": b"5"}
    assert got == expected, broken(
        f"after clear('a_'), get_many returned {_diff(got, expected, ns)}", CLEAR, CAPABILITIES
    )
    counts = [cascade_cache_backend.clear(ns + "a_"), cascade_cache_backend.clear(ns + "%")]
    assert counts == [0, 0], broken(f"clear('a_') again and clear('%') returned {counts!r}", CLEAR, CAPABILITIES)
    cleared = cascade_cache_backend.clear(ns)
    assert cleared == 3, broken(f"clear of the 3 entries left returned {cleared!r}", CLEAR, CAPABILITIES)
    got = cascade_cache_backend.get_many([ns + "ab", ns + "b"])
    assert got == {}, broken(f"after clear, get_many returned {_diff(got, {}, ns)}", CLEAR, CAPABILITIES)


def test_count_entries(cascade_cache_backend, ns):
    cache = cascade_cache_backend
    if not isinstance(cascade_cache_backend, EntryCount):
        pytest.skip("optional capability: the cache has no EntryCount (count_entries)")
    cache.set_many({ns + "a": b"1", ns + "b": b"", ns + "c": b"3"})
    cache.set_many({ns + "brief": b"4"}, ttl=TTL)
    counts = [
        cache.count_entries([ns + "a", ns + "b", ns + "nope", ns + "a", ns + "brief"]),  # distinct keys
        cache.count_entries(key for key in [ns + "c"]),
        cache.count_entries([]),
    ]
    assert counts == [3, 1, 0], broken(
        f"count_entries of a, b, nope, a and brief, of a generator of c and of none returned {counts!r}",
        COUNT_ENTRIES,
        CAPABILITIES,
    )
    time.sleep(TTL + 0.3)
    count = cache.count_entries([ns + "brief", ns + "c"])
    assert count == 1, broken(
        f"count_entries of an expired and a live key returned {count!r}", COUNT_ENTRIES, CAPABILITIES
    )
    many = {f"{ns}{i}": b"x" for i in range(3000)}
    cache.set_many(many)
    count = cache.count_entries([*many, ns + "missing"])
    assert count == 3000, broken(
        f"count_entries of 3,000 keys and a missing one returned {count!r}", COUNT_ENTRIES, CAPABILITIES
    )
    got = cache.get_many([ns + "a"])
    assert got == {ns + "a": b"1"}, broken(
        f"after count_entries, get_many returned {_diff(got, {ns + 'a': b'1'}, ns)}", COUNT_ENTRIES, CAPABILITIES
    )
