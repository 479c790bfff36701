"""URI parsing and option checking (no server needed), and secrets kept out of every repr."""

from __future__ import annotations

import math

import pytest

import cascade_core as cs
from cascade_core._errors import InvalidURIError, SerializationError
from cascade_core._uri import BackendURI
from cascade_redis import RedisCacheBackend, RedisOptions, RedisStateStore
from cascade_redis.connection import RedisConnection
from cascade_redis.options import DEFAULT_MAX_VALUE_SIZE, DEFAULT_STATE_TTL
from cascade_redis.provider import provider

SECRET = "pa:ss@w/rd%xyz"
SECRET_URI = "redis://alice:pa%3Ass%40w%2Frd%25xyz@db.example:6380/3?prefix=ci"


def test_defaults() -> None:
    options = RedisOptions.from_uri("redis://")
    assert (options.host, options.port, options.db, options.tls) == ("localhost", 6379, 0, False)
    assert options.prefix == "cascade"
    assert options.state_ttl == DEFAULT_STATE_TTL == 7 * 24 * 3600
    assert options.ttl is None
    assert options.serializer == "pickle"
    assert options.max_value_size == DEFAULT_MAX_VALUE_SIZE == 256 * 1024**2
    assert (options.socket_timeout, options.socket_connect_timeout) == (5.0, 2.0)
    assert (options.health_check_interval, options.retries) == (30, 3)


def test_every_option() -> None:
    options = RedisOptions.from_uri(
        "redis://h:1234?db=4&prefix=team-a&state_ttl=60&ttl=1.5&serializer=json&max_value_size=1K"
        "&socket_timeout=0.5&socket_connect_timeout=0.25&health_check_interval=0&retries=0"
    )
    assert (options.host, options.port, options.db, options.prefix) == ("h", 1234, 4, "team-a")
    assert (options.state_ttl, options.ttl, options.serializer, options.max_value_size) == (60, 1.5, "json", 1024)
    assert (options.socket_timeout, options.socket_connect_timeout) == (0.5, 0.25)
    assert (options.health_check_interval, options.retries) == (0, 0)


@pytest.mark.parametrize(
    ("uri", "db"),
    [("redis://h/2", 2), ("redis://h?db=5", 5), ("redis://h/7?db=7", 7), ("redis://h/", 0), ("redis://h", 0)],
)
def test_db_from_path_or_query(uri: str, db: int) -> None:
    assert RedisOptions.from_uri(uri).db == db


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        ("redis://h/1?db=2", "db"),
        ("redis://h/zero", "db"),
        ("redis://h?db=-1", "db"),
        ("redis://h?colour=blue", "colour"),
        ("redis://h?ttl=0", "ttl"),
        ("redis://h?ttl=soon", "ttl"),
        ("redis://h?state_ttl=1.5", "state_ttl"),
        ("redis://h?serializer=yaml", "serializer"),
        ("redis://h?max_value_size=lots", "max_value_size"),
        ("redis://h?max_value_size=1G", "max_value_size"),
        ("redis://h?socket_timeout=0", "socket_timeout"),
        ("redis://h?retries=many", "retries"),
        ("redis://h?prefix=", "prefix"),
        ("redis://h?prefix=a{b}", "prefix"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
        ("rediss://h?ssl_check_hostname=perhaps", "ssl_check_hostname"),
    ],
)
def test_bad_option_names_the_key(uri: str, key: str) -> None:
    with pytest.raises(InvalidURIError) as info:
        RedisOptions.from_uri(uri)
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize("key", ["ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"])
@pytest.mark.parametrize("scheme", ["redis://h", "redis+unix:///tmp/r.sock"])
def test_tls_options_need_rediss(scheme: str, key: str) -> None:
    value = "true" if key == "ssl_check_hostname" else "none" if key == "ssl_cert_reqs" else "/x.pem"
    with pytest.raises(InvalidURIError, match="use rediss://") as info:
        RedisOptions.from_uri(f"{scheme}?{key}={value}")
    assert info.value.key == key


def test_rediss_connection_settings() -> None:
    import redis.connection

    options = RedisOptions.from_uri(
        "rediss://:pw@h:6390/1?ssl_cert_reqs=optional&ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem"
        "&ssl_keyfile=/k.pem&ssl_check_hostname=false"
    )
    kwargs = options.pool_kwargs()
    assert kwargs["connection_class"] is redis.connection.SSLConnection
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("h", 6390, 1, "pw")
    assert kwargs["ssl_cert_reqs"] == "optional"
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == ("/ca.pem", "/c.pem", "/k.pem")
    assert kwargs["ssl_check_hostname"] is False
    assert RedisOptions.from_uri("rediss://h").pool_kwargs()["ssl_cert_reqs"] == "required"


def test_timeouts_are_always_set_and_redis_py_does_not_retry_itself() -> None:
    kwargs = RedisOptions.from_uri("redis://h?retries=2").pool_kwargs()
    assert kwargs["socket_timeout"] == 5.0 and kwargs["socket_connect_timeout"] == 2.0
    assert kwargs["retry"].get_retries() == 0  # RedisConnection.run does the bounded retrying


def test_unix_socket() -> None:
    import redis.connection

    options = RedisOptions.from_uri("redis+unix:///var/run/redis.sock?db=2&prefix=u")
    assert (options.unix_socket_path, options.db, options.host, options.prefix) == ("/var/run/redis.sock", 2, None, "u")
    kwargs = options.pool_kwargs()
    assert kwargs["connection_class"] is redis.connection.UnixDomainSocketConnection
    assert kwargs["path"] == "/var/run/redis.sock"
    with pytest.raises(InvalidURIError, match="socket path"):
        RedisOptions.from_uri("redis+unix://")
    with pytest.raises(InvalidURIError, match="host"):
        RedisOptions.from_uri("redis+unix://host/var/run/redis.sock")


def test_credentials_reach_the_pool_unmasked() -> None:
    kwargs = RedisOptions.from_uri(SECRET_URI).pool_kwargs()
    assert (kwargs["username"], kwargs["password"]) == ("alice", SECRET)


def test_provider_builds_backends_with_their_attributes() -> None:
    uri = BackendURI.parse("redis://h/0?serializer=json&max_value_size=2M&ttl=30")
    store = provider.cascade_state_backend(uri)
    cache = provider.cascade_cache_backend(uri)
    backend = store("run-1")
    for obj in (store, backend, cache):
        assert obj.serializer == "json"
        assert obj.max_payload_bytes == 2 * 1024**2
        assert obj.trusted_store is False
    assert backend.run_id == "run-1"
    assert cache.default_ttl == 30.0
    store.close()
    cache.close()
    store.close()  # twice is harmless, and nothing was connected


def test_provider_refuses_bad_options() -> None:
    with pytest.raises(InvalidURIError, match="'bogus'"):
        provider.cascade_state_backend(BackendURI.parse("redis://h?bogus=1"))
    with pytest.raises(InvalidURIError, match="'bogus'"):
        provider.cascade_cache_backend(BackendURI.parse("redis://h?bogus=1"))


def test_no_secret_in_any_repr_or_error() -> None:
    options = RedisOptions.from_uri(SECRET_URI)
    store = RedisStateStore(options)
    backend = store("run-1")
    cache = RedisCacheBackend(options)
    shown = [
        repr(options),
        str(options),
        repr(store),
        repr(backend),
        repr(cache),
        repr(store.connection),
        repr(provider),
        str(options.uri),
    ]
    with pytest.raises(InvalidURIError) as bad:
        RedisOptions.from_uri(SECRET_URI + "&ssl_keyfile=/k.pem")
    shown.append(str(bad.value))
    with pytest.raises(SerializationError) as big:
        RedisCacheBackend.from_uri(SECRET_URI + "&max_value_size=1K").set_many({"k": b"x" * 2048})
    shown.append(str(big.value))
    for text in shown:
        assert "pa:ss" not in text and "pa%3Ass" not in text and "xyz" not in text, text
    assert "***" in repr(store) and "***" in str(big.value)


def test_connection_is_lazy() -> None:
    connection = RedisConnection(RedisOptions.from_uri("redis://127.0.0.1:1"))
    assert connection._client is None  # building backends opens nothing
    connection.close()


@pytest.mark.redis
@pytest.mark.parametrize(
    ("option", "raw", "words"),
    [
        ("ttl", "1e300", "at most 315360000 (10 years)"),
        ("ttl", "nan", "at most 315360000 (10 years)"),
        ("ttl", "inf", "at most 315360000 (10 years)"),
        ("state_ttl", "315360001", "expected at most 315360000 seconds (10 years)"),
        ("state_ttl", "9" * 30, "expected a whole number from 0 to"),
        ("socket_timeout", "nan", "at most 86400 (a day)"),
        ("socket_timeout", "1e9", "at most 86400 (a day)"),
        ("socket_connect_timeout", "-inf", "at most 86400 (a day)"),
        ("health_check_interval", "86401", "expected at most 86400 seconds (a day)"),
        ("retries", "101", "expected at most 100"),
        ("db", str(2**31), "expected at most 2147483647"),
        ("max_value_size", "1T", "expected a size"),
        ("max_value_size", "99999999999999999999G", "expected a size"),
    ],
)
def test_out_of_range_options_are_refused_when_the_uri_is_parsed(redis_uri, option, raw, words, counter):
    @cs.task(cache=True, name="options.square")
    def square(n: int) -> int:
        counter.hit("square")
        return n * n

    uri = f"{redis_uri}?{option}={raw}"
    with pytest.raises(cs.InvalidURIError) as error:
        RedisOptions.from_uri(uri)
    assert error.value.key == option and f"for option {option!r}" in str(error.value) and words in str(error.value)
    assert "\n" not in str(error.value)
    for kind in ("cache_backend", "state_backend"):
        with pytest.raises(cs.InvalidURIError):
            cs.run(square(5), **{kind: uri})
    assert counter.total == 0


@pytest.mark.redis
def test_the_largest_ttls_work_on_redis(redis_uri, redis_server):
    cache = RedisCacheBackend.from_uri(f"{redis_uri}?ttl=315360000&state_ttl=315360000")
    try:
        cache.set_many({"k": b"v"})
        assert cache.get_many(["k"]) == {"k": b"v"}
        with redis_server.client() as client:
            assert 315_359_000_000 < client.pttl("cascade:cache:k") <= 315_360_000_000
        for bad in (math.nan, math.inf, 1e300):
            with pytest.raises(cs.DefinitionError, match="a cache TTL must be a number of seconds"):
                cache.set_many({"k2": b"v"}, ttl=bad)
        assert cache.get_many(["k2"]) == {}
    finally:
        cache.close()
