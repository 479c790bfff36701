"""The Sentinel and Cluster URI forms: parsing, one-line masked errors for bad input, the connection
settings they give, their listing by ``cascade backends``; and what ``cascade backends check`` reports for
one server. Only that last test needs a server."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import cascade_core as cs
from cascade_core.cli import main as cli_main
from cascade_core.plugin import BackendURI
from cascade_redis import RedisCacheBackend, RedisOptions, RedisStateStore
from cascade_redis.clients import _sentinel_kwargs

PASSWORD = "pa55-w0rd"
SENTINEL_PASSWORD = "s3ntinel-pa55"
NEW_SCHEMES = ("redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")


def test_sentinel_uri_with_one_sentinel() -> None:
    options = RedisOptions.from_uri("redis+sentinel://127.0.0.1/mymaster")
    assert (options.kind, options.nodes, options.service, options.db) == (
        "sentinel",
        (("127.0.0.1", 26379),),
        "mymaster",
        0,
    )
    assert (options.host, options.port, options.tls) == (None, None, False)


def test_sentinel_uri_with_everything() -> None:
    uri = (
        f"rediss+sentinel://alice:{PASSWORD}@h1:26379,h2:26380,[::1]/svc/2?sentinel_username=watcher"
        f"&sentinel_password={SENTINEL_PASSWORD}&ssl_cert_reqs=none&min_replicas=1&min_replicas_timeout=0.5"
    )
    options = RedisOptions.from_uri(uri)
    assert options.nodes == (("h1", 26379), ("h2", 26380), ("::1", 26379))
    assert (options.service, options.db, options.tls) == ("svc", 2, True)
    assert (options.min_replicas, options.min_replicas_timeout) == (1, 0.5)
    assert (options.sentinel_username, options.sentinel_password) == ("watcher", SENTINEL_PASSWORD)
    # The data nodes get the URI's user and password, the sentinels their own.
    node = options.node_kwargs()
    assert (node["username"], node["password"], node["db"], node["ssl"]) == ("alice", PASSWORD, 2, True)
    assert node["ssl_cert_reqs"] == "none"
    sentinel = _sentinel_kwargs(options)
    assert (sentinel["username"], sentinel["password"], sentinel["ssl"]) == ("watcher", SENTINEL_PASSWORD, True)
    assert sentinel["retry"].get_retries() == 0 and sentinel["socket_timeout"] == 5.0
    for text in (str(options.uri), repr(options), repr(RedisStateStore(options)), repr(RedisCacheBackend(options))):
        assert PASSWORD not in text and SENTINEL_PASSWORD not in text, text
        assert "h1:26379,h2:26380,[::1]/svc/2" in text


def test_cluster_uris() -> None:
    options = RedisOptions.from_uri("redis+cluster://h1:7000,h2:7001,h1:7000/0?db=0&prefix=ci")
    assert (options.kind, options.nodes, options.db, options.prefix) == (
        "cluster",
        (("h1", 7000), ("h2", 7001)),  # a seed listed twice counts once
        0,
        "ci",
    )
    assert RedisOptions.from_uri("redis+cluster://h1,h2").nodes == (("h1", 6379), ("h2", 6379))
    tls = RedisOptions.from_uri("rediss+cluster://h1:7000?ssl_ca_certs=/ca.pem")
    assert tls.tls and tls.node_kwargs()["ssl_ca_certs"] == "/ca.pem"
    uri = RedisOptions.from_uri(f"redis+cluster://:{PASSWORD}@h1:7000,[::1]:7001?prefix=a").uri
    assert str(uri) == "redis+cluster://:***@h1:7000,[::1]:7001?prefix=a"
    assert BackendURI.parse(uri.render(mask=False)) == uri  # the host list survives a round trip


BAD = [
    ("redis+sentinel://h1:26379", "service", "names no Sentinel service"),
    ("redis+sentinel://h1:26379/", "service", "names no Sentinel service"),
    ("redis+sentinel:///svc", "host", "names no host"),
    ("redis+sentinel://h1/0", "service", "names db 0 where the Sentinel service name goes"),
    ("redis+sentinel://h1/svc/x", "db", "invalid database 'x'"),
    ("redis+sentinel://h1/svc/1/2", "db", "more than /SERVICE/DB"),
    ("redis+sentinel://h1/svc/1?db=2", "db", "keep one"),
    ("redis+sentinel://h1/svc?min_replicas=-1", "min_replicas", "invalid value"),
    ("redis+sentinel://h1/svc?ssl_ca_certs=/x.pem", "ssl_ca_certs", "use rediss+sentinel://"),
    ("redis+cluster://", "host", "names no host"),
    ("redis+cluster://h1:7000/3", "db", "a Redis Cluster has only db 0"),
    ("redis+cluster://h1:7000?db=1", "db", "a Redis Cluster has only db 0"),
    ("redis+cluster://h1:7000/mymaster", "db", "a cluster URI has none"),
    (f"redis+cluster://h1:7000?sentinel_password={SENTINEL_PASSWORD}", "sentinel_password", "only applies to Sentinel"),
    ("redis+cluster://h1:7000?sentinel_username=w", "sentinel_username", "only applies to Sentinel"),
    ("redis+cluster://h1?ssl_cert_reqs=none", "ssl_cert_reqs", "use rediss+cluster://"),
    ("redis+cluster://h1?min_replicas=1&min_replicas_timeout=5", "min_replicas_timeout", "shorter than socket_timeout"),
    ("redis+cluster://h1:0", "port", "invalid port"),
    ("redis+cluster://h1:65536", "port", "invalid port"),
]

BAD_HOST_LISTS = [
    ("redis://h1:6379,h2:6380/0", "host", "lists several hosts: use redis+cluster://"),
    ("rediss://h1,h2", "host", "lists several hosts"),
    ("redis+cluster://h1:7000,h2:70000", "port", "invalid port"),
    ("redis+cluster://h1:7000,,h2:7001", "host", "an empty host in a host list"),
    ("redis+sentinel://h1:26379,h2:26379", "service", "names no Sentinel service"),
    ("redis+cluster://h1:7000,h2:7001/2", "db", "a Redis Cluster has only db 0"),
]


def _secret(uri: str) -> str:
    """``uri`` with a password in it, so that every error is checked for masking."""
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://user:{PASSWORD}@{rest}"


def _check_bad(uri: str, key: str, words: str) -> None:
    for text in (uri, _secret(uri)):
        with pytest.raises(cs.InvalidURIError) as info:
            RedisOptions.from_uri(text)
        message = str(info.value)
        assert words in message and len(message.splitlines()) == 1, message
        assert PASSWORD not in message and SENTINEL_PASSWORD not in message, message
        if key == "port":  # the URI parser's own error, before cascade-redis sees it
            assert info.value.key == "port"
        else:
            assert info.value.key == key, message


@pytest.mark.parametrize(("uri", "key", "words"), BAD)
def test_bad_uri_is_one_masked_line_naming_the_key(uri: str, key: str, words: str) -> None:
    _check_bad(uri, key, words)


@pytest.mark.parametrize(("uri", "key", "words"), BAD_HOST_LISTS)
def test_bad_host_lists(uri: str, key: str, words: str) -> None:
    _check_bad(uri, key, words)


def test_bad_uri_through_run_and_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    @cs.task
    def one() -> int:
        return 1

    with pytest.raises(cs.InvalidURIError, match="a Redis Cluster has only db 0"):
        cs.run(one(), state_backend=f"redis+cluster://:{PASSWORD}@127.0.0.1:7000/3")
    with pytest.raises(cs.InvalidURIError, match="names no Sentinel service"):
        cs.run(one(), cache_backend="redis+sentinel://127.0.0.1:26379")
    code = cli_main(["backends", "check", f"redis+cluster://:{PASSWORD}@127.0.0.1:7000?db=4"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [err.strip()] and "a Redis Cluster has only db 0" in err, err
    assert PASSWORD not in err and "redis+cluster://:***@127.0.0.1:7000?db=4" in err


def test_backends_lists_the_new_schemes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cascade_core", "backends", "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rows = {row["scheme"]: row for row in json.loads(done.stdout)}
    for scheme in NEW_SCHEMES:
        assert rows[scheme]["distribution"] == "cascade-redis", rows.get(scheme)
        assert rows[scheme]["provides"] == ["state", "cache"]
        assert rows[scheme]["target"] == "cascade_redis.provider:provider"


def test_building_backends_opens_nothing() -> None:
    """Nothing listens on port 1: building (and closing) backends for every form connects to nothing."""
    for uri in ("redis+cluster://127.0.0.1:1", "redis+sentinel://127.0.0.1:1/svc"):
        store, cache = RedisStateStore.from_uri(uri), RedisCacheBackend.from_uri(uri)
        assert store("run").run_id == "run"
        assert store.connection._client is None and cache.connection._client is None
        store.close()
        cache.close()


def test_unreachable_deployments_fail_with_one_line_naming_what_to_check() -> None:
    cluster = RedisStateStore.from_uri(f"redis+cluster://:{PASSWORD}@127.0.0.1:1?retries=0")
    sentinel = RedisCacheBackend.from_uri(
        f"redis+sentinel://127.0.0.1:1/svc?retries=0&sentinel_password={SENTINEL_PASSWORD}"
    )
    try:
        with pytest.raises(cs.BackendUnavailableError) as cluster_error:
            cluster("run").get_run_info()
        with pytest.raises(cs.BackendUnavailableError) as sentinel_error:
            sentinel.get_many(["k"])
    finally:
        cluster.close()
        sentinel.close()
    assert "is the cluster up (CLUSTER INFO says cluster_state:ok)? check the hosts" in str(cluster_error.value)
    assert "are the sentinels up, and do they know the service 'svc'? check the hosts" in str(sentinel_error.value)
    for text in (str(cluster_error.value), str(sentinel_error.value)):
        assert len(text.splitlines()) == 1 and PASSWORD not in text and SENTINEL_PASSWORD not in text, text


def test_backends_check_reports_a_single_server(redis_uri: str, redis_server: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cascade_core", "backends", "check", redis_uri, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with redis_server.client() as client:
        version = client.info("server")["redis_version"]
    details = {check["backend"]: check["detail"] for check in json.loads(done.stdout)["checks"]}
    found = f"redis {version} at 127.0.0.1:{redis_server.port}, db 0"
    assert details == {"state": found, "cache": found}
