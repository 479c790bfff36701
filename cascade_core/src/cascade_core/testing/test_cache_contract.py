"""The CacheBackend contract (and the optional CacheCatalog), for the backend of ``--cascade-uri``.

Caches may be shared (``memory://`` is process-wide, a server is shared by machines), so
every test works under its own key prefix.
"""

from __future__ import annotations

import time
import uuid

import pytest

from cascade_core.testing.plugin import check_declared_attributes, open_cache_backend, run_concurrently

TTL = 0.5  # short enough to keep the kit fast, long enough for a slow CI machine to read before expiry


@pytest.fixture
def ns(cascade_cache_backend):
    """A key prefix no other test uses; the entries under it are cleared after the test when possible."""
    prefix = f"kit-{uuid.uuid4().hex}/"
    yield prefix
    clear = getattr(cascade_cache_backend, "clear", None)
    if callable(clear):
        clear(prefix)


def test_round_trip_varied_values(cascade_cache_backend, ns):
    items = {ns + "empty": b"", ns + "nul": b"\x00", ns + "binary": bytes(range(256)) * 4, ns + "bad-utf8": b"\xff\xfe"}
    cascade_cache_backend.set_many(items)
    got = cascade_cache_backend.get_many(list(items))
    assert got == items
    assert all(type(value) is bytes for value in got.values())


def test_large_value(cascade_cache_backend, ns):
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB
    cascade_cache_backend.set_many({ns + "big": big})
    assert cascade_cache_backend.get_many([ns + "big"])[ns + "big"] == big


def test_missing_keys_are_left_out(cascade_cache_backend, ns):
    assert cascade_cache_backend.get_many([ns + "nope"]) == {}
    cascade_cache_backend.set_many({ns + "a": b"1"})
    assert cascade_cache_backend.get_many([ns + "nope", ns + "a"]) == {ns + "a": b"1"}
    assert cascade_cache_backend.get_many([]) == {}


def test_get_many_accepts_any_iterable(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"1"})
    assert cascade_cache_backend.get_many(key for key in [ns + "a", ns + "b"]) == {ns + "a": b"1"}
    assert cascade_cache_backend.get_many([ns + "a", ns + "a"]) == {ns + "a": b"1"}


def test_many_keys_in_one_batch(cascade_cache_backend, ns):
    items = {f"{ns}{i}": str(i).encode() for i in range(3000)}
    cascade_cache_backend.set_many(items)
    assert cascade_cache_backend.get_many(list(items)) == items
    assert cascade_cache_backend.delete_many(list(items)) == len(items)
    assert cascade_cache_backend.get_many(list(items)) == {}


def test_odd_keys(cascade_cache_backend, ns):
    odd = ["with space", "unicode-\u00e9\u4e2d", "100%_done", "a:b/c", "*?[]{}", "../up", "a//b", "k" * 300]
    odd += ["Case", "case"]
    items = {ns + key: key.encode() for key in odd}
    cascade_cache_backend.set_many(items)
    assert cascade_cache_backend.get_many(list(items)) == items
    assert cascade_cache_backend.delete_many([ns + "Case", ns + "k" * 300]) == 2
    assert cascade_cache_backend.get_many([ns + "case", ns + "k" * 299]) == {ns + "case": b"case"}


def test_overwrite(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"old", ns + "b": b"kept"})
    cascade_cache_backend.set_many({ns + "a": b"new"})
    assert cascade_cache_backend.get_many([ns + "a", ns + "b"]) == {ns + "a": b"new", ns + "b": b"kept"}


def test_delete_many_counts_what_existed(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"1", ns + "b": b"2", ns + "c": b"3"})
    assert cascade_cache_backend.delete_many([ns + "a", ns + "b", ns + "missing"]) == 2
    assert cascade_cache_backend.get_many([ns + "a", ns + "b", ns + "c"]) == {ns + "c": b"3"}
    assert cascade_cache_backend.delete_many([ns + "a"]) == 0
    assert cascade_cache_backend.delete_many([ns + "c", ns + "c"]) == 1
    assert cascade_cache_backend.delete_many([]) == 0


def test_ttl_expiry(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "short": b"1", ns + "short2": b"2"}, ttl=TTL)
    cascade_cache_backend.set_many({ns + "long": b"3"}, ttl=3600)
    assert cascade_cache_backend.get_many([ns + "short", ns + "short2"]) == {ns + "short": b"1", ns + "short2": b"2"}
    time.sleep(TTL + 0.4)
    assert cascade_cache_backend.get_many([ns + "short", ns + "short2", ns + "long"]) == {ns + "long": b"3"}
    cascade_cache_backend.set_many({ns + "short": b"again"})  # an expired key can be set again
    assert cascade_cache_backend.get_many([ns + "short"]) == {ns + "short": b"again"}


def test_ttl_zero_or_less_is_expired_on_arrival(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "zero": b"old", ns + "negative": b"old", ns + "kept": b"old"})
    cascade_cache_backend.set_many({ns + "zero": b"new"}, ttl=0)
    cascade_cache_backend.set_many({ns + "negative": b"new"}, ttl=-1)
    # Neither the new value nor the one it replaced is returned.
    assert cascade_cache_backend.get_many([ns + "zero", ns + "negative", ns + "kept"]) == {ns + "kept": b"old"}


def test_expired_entries_are_gone_after_delete_and_clear(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "d/old": b"1", ns + "c/old": b"1"}, ttl=TTL)
    cascade_cache_backend.set_many({ns + "d/live": b"2", ns + "c/live": b"2"})
    time.sleep(TTL + 0.4)
    # Only the live entry is counted: an expired one is gone, purged or not (docs/backends.md).
    assert cascade_cache_backend.delete_many([ns + "d/old", ns + "d/live", ns + "d/missing"]) == 1
    assert cascade_cache_backend.get_many([ns + "d/old", ns + "d/live"]) == {}
    if callable(getattr(cascade_cache_backend, "clear", None)):
        assert cascade_cache_backend.clear(ns + "c/") == 1
        assert cascade_cache_backend.get_many([ns + "c/old", ns + "c/live"]) == {}
        assert cascade_cache_backend.clear(ns + "c/") == 0


def test_overwrite_replaces_ttl(cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"1"}, ttl=TTL)
    cascade_cache_backend.set_many({ns + "a": b"2"}, ttl=3600)
    time.sleep(TTL + 0.4)
    assert cascade_cache_backend.get_many([ns + "a"]) == {ns + "a": b"2"}


def test_persists_across_instances(cascade_uri, cascade_cache_backend, ns):
    cascade_cache_backend.set_many({ns + "a": b"kept"})
    other = open_cache_backend(cascade_uri)
    try:
        assert other.get_many([ns + "a"]) == {ns + "a": b"kept"}
    finally:
        other.close()


def test_close_twice_is_harmless(cascade_uri, cascade_cache_backend, ns):
    own = open_cache_backend(cascade_uri)
    own.set_many({ns + "a": b"1"})
    own.close()
    own.close()
    assert cascade_cache_backend.get_many([ns + "a"]) == {ns + "a": b"1"}


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
    assert not errors, errors
    keys = [f"{ns}{worker}-{i}" for worker in range(8) for i in range(20)]
    got = cascade_cache_backend.get_many(keys)
    assert set(got) == set(keys)
    assert got[f"{ns}5-11"] == b"5:11"


# -- optional: CacheCatalog --------------------------------------------------------


def _catalog(cache):
    from cascade_core.plugin import CacheCatalog

    if not isinstance(cache, CacheCatalog):
        pytest.skip("optional capability: the cache has no CacheCatalog (clear)")
    return cache


def test_clear_prefix(cascade_cache_backend, ns):
    _catalog(cascade_cache_backend)
    cascade_cache_backend.set_many(
        {ns + "a_1": b"1", ns + "a_2": b"2", ns + "ab": b"3", ns + "A_1": b"4", ns + "b": b"5"}
    )
    # '_' and '%' are literal characters in a prefix, not wildcards, and case matters.
    assert cascade_cache_backend.clear(ns + "a_") == 2
    assert cascade_cache_backend.get_many([ns + "a_1", ns + "a_2", ns + "ab", ns + "A_1", ns + "b"]) == {
        ns + "ab": b"3",
        ns + "A_1": b"4",
        ns + "b": b"5",
    }
    assert cascade_cache_backend.clear(ns + "a_") == 0
    assert cascade_cache_backend.clear(ns + "%") == 0
    assert cascade_cache_backend.clear(ns) == 3
    assert cascade_cache_backend.get_many([ns + "ab", ns + "b"]) == {}


def test_count_entries(cascade_cache_backend, ns):
    from cascade_core.plugin import EntryCount

    cache = cascade_cache_backend
    if not isinstance(cascade_cache_backend, EntryCount):
        pytest.skip("optional capability: the cache has no EntryCount (count_entries)")
    cache.set_many({ns + "a": b"1", ns + "b": b"", ns + "c": b"3"})
    cache.set_many({ns + "brief": b"4"}, ttl=TTL)
    assert cache.count_entries([ns + "a", ns + "b", ns + "nope", ns + "a", ns + "brief"]) == 3  # distinct keys
    assert cache.count_entries(key for key in [ns + "c"]) == 1
    assert cache.count_entries([]) == 0
    time.sleep(TTL + 0.3)
    assert cache.count_entries([ns + "brief", ns + "c"]) == 1  # expired entries do not count
    many = {f"{ns}{i}": b"x" for i in range(3000)}
    cache.set_many(many)
    assert cache.count_entries([*many, ns + "missing"]) == 3000
    assert cache.get_many([ns + "a"]) == {ns + "a": b"1"}  # counting reads nothing away
