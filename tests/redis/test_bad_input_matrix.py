"""The bad-input matrix: every mistake gets a one-line message from a CascadeError subclass,
the CLI exits 2 without a traceback (unless --debug), and nothing already stored is lost.

Before the matrix, a run called "keep" and its cache entries are stored in a sqlite file and
on a real redis-server; after every case both are compared byte for byte with the snapshot.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading

import pytest

import cascade_core as cs

pytestmark = pytest.mark.redis


@cs.task(cache=True, name="matrix.square")
def square(x):
    return x * x


@cs.task(name="matrix.total")
def total(xs):
    return sum(xs)


@cs.task(name="matrix.lock")
def make_lock():
    return threading.Lock()


@cs.task(name="matrix.big")
def big():
    return b"x" * 5000


@cs.task(name="matrix.a_set")
def a_set():
    return {1, 2}


@cs.task(cache=True, name="matrix.hash_me")
def hash_me(lock):
    return 1


def plain_function():
    return 1


KEEP = total([square(i) for i in range(5)])


@pytest.fixture
def stores(tmp_path, redis_uri, redis_server):
    sqlite_uri = f"sqlite:///{tmp_path / 'keep.db'}"
    cs.run(KEEP, state_backend=sqlite_uri, cache_backend=sqlite_uri, run_id="keep")
    cs.run(KEEP, state_backend=redis_uri, cache_backend=redis_uri, run_id="keep")

    def snapshot():
        with sqlite3.connect(tmp_path / "keep.db") as conn:
            rows = conn.execute("SELECT node_id, payload FROM results WHERE run_id = 'keep' ORDER BY node_id")
            cache = conn.execute("SELECT key, value FROM cache ORDER BY key")
            local = (rows.fetchall(), cache.fetchall())
        with redis_server.client() as client:
            remote = {key: client.dump(key) for key in sorted(client.keys("cascade:*")) if b"lease" not in key}
        return local, remote

    return sqlite_uri, redis_uri, snapshot


def _kept(before, after) -> bool:
    """Everything stored before is still there, byte for byte (failed cases may add their own runs)."""
    (local_before, remote_before), (local_after, remote_after) = before, after
    return local_before == local_after and all(remote_after.get(key) == value for key, value in remote_before.items())


def _corrupt(path, run_id: str, how: str) -> None:
    with sqlite3.connect(path) as conn:
        node_id, payload = conn.execute("SELECT node_id, payload FROM results WHERE run_id = ?", (run_id,)).fetchone()
        damaged = payload[:-1] + bytes([payload[-1] ^ 0xFF]) if how == "flip" else payload[: len(payload) // 2]
        conn.execute("UPDATE results SET payload = ? WHERE run_id = ? AND node_id = ?", (damaged, run_id, node_id))


def _api_cases(sqlite_uri: str, redis_uri: str, tmp_path, closed_port: int, auth_port: int):
    host = redis_uri.split("//", 1)[1].split("/", 1)[0]
    down = f"redis://127.0.0.1:{closed_port}/0"
    victim = tmp_path / "victim.db"
    victim_uri = f"sqlite:///{victim}"
    n = cs.Param("n", type=int)
    cyclic_a = square(1)
    cyclic_b = total([cyclic_a])
    cyclic_a.after(cyclic_b)

    def resume_corrupted(how):
        def case():
            if victim.exists():
                victim.unlink()
            report = cs.Engine(victim_uri).execute(total([square(1), make_lock()]), run_id="victim")
            assert report.status == "failed"
            _corrupt(victim, "victim", how)
            cs.run(total([square(1), square(2)]), state_backend=victim_uri, run_id="victim")

        return case

    def signed_then_unsigned():
        cs.Engine(victim_uri, secret_keys=[b"k1"]).run(square(3), run_id="signed")
        cs.Engine(victim_uri, secret_keys=[]).run(square(3), run_id="signed")

    run = cs.run
    return [
        ("malformed URI", cs.InvalidURIError, lambda: run(square(1), state_backend="sqlite:/x.db")),
        ("no scheme", cs.InvalidURIError, lambda: run(square(1), state_backend="localhost:6379")),
        ("empty scheme", cs.InvalidURIError, lambda: run(square(1), state_backend="://host")),
        ("bad scheme chars", cs.InvalidURIError, lambda: run(square(1), state_backend="re dis://h")),
        ("unknown scheme", cs.BackendNotFoundError, lambda: run(square(1), state_backend="mongo://h/0")),
        ("unknown cache scheme", cs.BackendNotFoundError, lambda: run(square(1), cache_backend="s4://bucket")),
        ("port zero", cs.InvalidURIError, lambda: run(square(1), state_backend=f"redis://{host.split(':')[0]}:0/0")),
        ("port too big", cs.InvalidURIError, lambda: run(square(1), state_backend="redis://h:70000/0")),
        ("port not a number", cs.InvalidURIError, lambda: run(square(1), state_backend="redis://h:abc/0")),
        ("db not a number", cs.InvalidURIError, lambda: run(square(1), state_backend=f"redis://{host}/x")),
        ("negative db", cs.InvalidURIError, lambda: run(square(1), state_backend=f"redis://{host}/-1")),
        ("db twice, differing", cs.InvalidURIError, lambda: run(square(1), state_backend=f"redis://{host}/0?db=1")),
        ("negative ttl", cs.InvalidURIError, lambda: run(square(1), cache_backend=f"redis://{host}/0?ttl=-5")),
        ("non-numeric state_ttl", cs.InvalidURIError, lambda: run(square(1), state_backend=f"{redis_uri}?state_ttl=a")),
        ("empty ttl", cs.InvalidURIError, lambda: run(square(1), cache_backend=f"{redis_uri}?ttl=")),
        (
            "sqlite negative timeout",
            cs.InvalidURIError,
            lambda: run(square(1), state_backend=sqlite_uri + "?timeout=-1"),
        ),
        ("memory bad ttl", cs.InvalidURIError, lambda: run(square(1), cache_backend="memory://?ttl=zero")),
        ("unknown redis option", cs.InvalidURIError, lambda: run(square(1), state_backend=f"{redis_uri}?prefx=a")),
        ("unknown sqlite option", cs.InvalidURIError, lambda: run(square(1), state_backend=sqlite_uri + "?foo=1")),
        (
            "TLS option on redis://",
            cs.InvalidURIError,
            lambda: run(square(1), state_backend=f"{redis_uri}?ssl_cert_reqs=none"),
        ),
        ("bad TLS value", cs.InvalidURIError, lambda: run(square(1), state_backend="rediss://h/0?ssl_cert_reqs=maybe")),
        (
            "unescaped @ in password",
            cs.BackendUnavailableError,
            lambda: run(square(1), state_backend=f"redis://:p@ss@127.0.0.1:{closed_port}/0"),
        ),
        (
            "non-ASCII password, wrong",
            cs.BackendUnavailableError,
            lambda: run(square(1), state_backend=f"redis://:%C3%A9t%C3%A9@127.0.0.1:{auth_port}/0"),
        ),
        ("backend down", cs.BackendUnavailableError, lambda: run(square(1), state_backend=down)),
        ("cache down", cs.BackendUnavailableError, lambda: run(square(1), cache_backend=down)),
        (
            "sqlite missing directory",
            cs.BackendUnavailableError,
            lambda: run(square(1), state_backend=f"sqlite:///{tmp_path / 'nope' / 'x.db'}"),
        ),
        ("missing param", cs.ParamError, lambda: run(square(n))),
        ("mistyped param", cs.ParamError, lambda: run(square(n), params={"n": "four"})),
        ("unknown param", cs.ParamError, lambda: run(square(n), params={"n": 1, "m": 2})),
        ("params not a mapping", cs.ParamError, lambda: run(square(n), params=["n"])),
        ("int target", cs.TargetError, lambda: run(42)),
        ("task not called", cs.TargetError, lambda: run(square)),
        ("plain function target", cs.TargetError, lambda: run(plain_function)),
        ("cycle with after", cs.CycleError, lambda: run(cyclic_b)),
        ("task on non-callable", cs.DefinitionError, lambda: cs.task(42)),
        ("task bad option", cs.DefinitionError, lambda: cs.task(retries=-1)(plain_function)),
        ("max_workers 0", cs.DefinitionError, lambda: run(square(1), max_workers=0)),
        ("run id with space", cs.DefinitionError, lambda: run(square(1), run_id="a b")),
        ("not a state backend", cs.DefinitionError, lambda: run(square(1), state_backend=42)),
        ("not a cache backend", cs.DefinitionError, lambda: run(square(1), cache_backend=object())),
        ("bad lease ttl", cs.DefinitionError, lambda: cs.Engine(lease_ttl=-1)),
        ("unhashable cache input", cs.HashingError, lambda: run(hash_me(threading.Lock()))),
        ("unserializable result", cs.TaskFailed, lambda: run(make_lock(), state_backend=sqlite_uri)),
        (
            "oversized result",
            cs.TaskFailed,
            lambda: run(big(), state_backend=f"{redis_uri}?max_value_size=1K", cache_backend=redis_uri),
        ),
        (
            "json-unserializable result",
            cs.TaskFailed,
            lambda: run(a_set(), state_backend=f"{redis_uri}?serializer=json", cache_backend=redis_uri),
        ),
        ("corrupted stored row", cs.IntegrityError, resume_corrupted("flip")),
        ("truncated stored row", cs.IntegrityError, resume_corrupted("truncate")),
        ("signed row, no key", cs.IntegrityError, signed_then_unsigned),
    ]


def test_api_bad_input_matrix(stores, tmp_path, closed_port, auth_redis_server):
    sqlite_uri, redis_uri, snapshot = stores
    before = snapshot()
    cases = _api_cases(sqlite_uri, redis_uri, tmp_path, closed_port, auth_redis_server.port)
    assert len(cases) >= 40
    for name, expected, action in cases:
        try:
            action()
        except cs.CascadeError as caught:
            error = caught
        else:
            pytest.fail(f"{name}: no error")
        assert isinstance(error, expected), (name, type(error), error)
        message = str(error)
        assert message and "\n" not in message, (name, message)
        assert _kept(before, snapshot()), f"{name}: stored data changed"


CLI_CASES = [
    ("unknown command", ["bogus"]),
    ("unknown scheme", ["run", "flow.py:target", "--state", "mongo://h"]),
    ("malformed URI", ["run", "flow.py:target", "--state", "not-a-uri"]),
    ("bad --param", ["run", "flow.py:target", "--param", "novalue"]),
    ("unknown param", ["run", "flow.py:target", "--param", "zzz=1"]),
    ("mistyped param", ["run", "flow.py:target", "--param", "n=four"]),
    ("missing file", ["run", "missing.py:target"]),
    ("missing attribute", ["run", "flow.py:nothing"]),
    ("non-lazy target", ["run", "flow.py:number"]),
    ("bad workers", ["run", "flow.py:target", "--workers", "0"]),
    ("bad check URI", ["backends", "check", "::bad"]),
    ("unknown run", ["runs", "show", "no-such-run"]),
    ("forget unknown run", ["runs", "forget", "no-such-run"]),
    ("TLS on redis://", ["backends", "check", "redis://h/0?ssl_ca_certs=/x"]),
]


@pytest.mark.parametrize(("name", "args"), CLI_CASES, ids=[case[0] for case in CLI_CASES])
def test_cli_bad_input(name, args, stores, tmp_path):
    sqlite_uri, _, snapshot = stores
    before = snapshot()
    (tmp_path / "flow.py").write_text(
        "import cascade_core as cs\n"
        "n = cs.Param('n', default=1, type=int)\n"
        "@cs.task\n"
        "def inc(x):\n"
        "    return x + 1\n"
        "target = inc(n)\n"
        "number = 42\n"
    )
    env = {**os.environ, "CASCADE_STATE": sqlite_uri, "CASCADE_CACHE": sqlite_uri}
    result = subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    assert result.returncode == 2, (name, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
    assert "Traceback" not in result.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "cascade_core", "--debug", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert debug.returncode == 2
    if name != "unknown command":  # argparse errors have no traceback to show
        assert "Traceback" in debug.stderr, name
    assert _kept(before, snapshot())
