"""What only the sqlite backend promises: the file, its options, its errors, several processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from cascade_core import BackendUnavailableError, CascadeError, InvalidURIError, SerializationError
from cascade_core._plugins.registry import registry
from cascade_core._uri import BackendURI
from cascade_core.backends.sqlite import SCHEMA_VERSION, SqliteCacheBackend, SqliteStateBackend, SqliteStateStore
from cascade_core.testing.clock import frozen_clock


def uri_of(path, query: str = "") -> BackendURI:
    return BackendURI.parse(f"sqlite:///{path}{query}")


def raw(path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def run_python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


@pytest.fixture
def db(tmp_path):
    return tmp_path / "cascade.db"


@pytest.fixture
def store(db):
    store = SqliteStateStore.from_uri(uri_of(db))
    yield store
    store.close()


@pytest.fixture
def cache(db):
    cache = SqliteCacheBackend.from_uri(uri_of(db))
    yield cache
    cache.close()


# -- the file -------------------------------------------------------------------


def test_wal_mode_and_schema_version(store, db):
    with store("r") as backend:
        backend.put_results({"a": b"1"})
    conn = raw(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "run_info", "results", "skipped", "cache"} <= tables
        assert conn.execute("SELECT run_id, node_id, payload FROM results").fetchall() == [("r", "a", b"1")]
    finally:
        conn.close()


def test_journal_option(db):
    store = SqliteStateStore.from_uri(uri_of(db, "?journal=delete"))
    store.close()
    conn = raw(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()


def test_relative_path_is_resolved_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = SqliteStateStore.from_uri(BackendURI.parse("sqlite:///sub/../rel.db"))
    store.close()
    assert store.path == str(tmp_path / "rel.db")
    assert (tmp_path / "rel.db").exists()


def test_absolute_path_takes_four_slashes(tmp_path):
    path = tmp_path / "abs.db"
    cache = registry.cache_backend(BackendURI.parse(f"sqlite:///{path}"))  # tmp_path starts with '/'
    cache.close()
    assert f"sqlite:///{path}".startswith("sqlite:////")
    assert path.exists()


def test_registry_resolves_sqlite(db):
    factory = registry.state_factory(uri_of(db))
    try:
        backend = factory("r")
        assert isinstance(backend, SqliteStateBackend)
        assert backend.trusted_store is True
        assert backend.serializer == "pickle"
        backend.put_results({"a": b"1"})
        assert [run["run_id"] for run in factory.list_runs()] == ["r"]
    finally:
        factory.close()


def test_persists_across_processes(db):
    finish(
        run_python(
            """
            import sys
            from cascade_core._uri import BackendURI
            from cascade_core.backends.sqlite import SqliteCacheBackend, SqliteStateStore

            uri = BackendURI.parse("sqlite:///" + sys.argv[1])
            with SqliteStateStore.from_uri(uri) as store:
                backend = store("run-1")
                backend.put_results({"node": b"\\x00from child"})
                backend.set_run_info({"status": "done"})
            cache = SqliteCacheBackend.from_uri(uri)
            cache.set_many({"key": b"cached"})
            cache.close()
            """,
            str(db),
        )
    )
    with SqliteStateStore.from_uri(uri_of(db)) as store:
        backend = store("run-1")
        assert backend.get_results(["node"]) == {"node": b"\x00from child"}
        assert backend.get_run_info()["status"] == "done"
    cache = SqliteCacheBackend.from_uri(uri_of(db))
    try:
        assert cache.get_many(["key"]) == {"key": b"cached"}
    finally:
        cache.close()


WRITER = """
import sys
from cascade_core._uri import BackendURI
from cascade_core.backends.sqlite import SqliteCacheBackend, SqliteStateStore

uri, worker = BackendURI.parse("sqlite:///" + sys.argv[1]), sys.argv[2]
store = SqliteStateStore.from_uri(uri)
cache = SqliteCacheBackend.from_uri(uri)
backend = store("shared-run")
for i in range(40):
    backend.put_results({f"{worker}-{i}-a": b"a", f"{worker}-{i}-b": b"b"})
    backend.set_run_info({f"worker-{worker}": str(i)})
    cache.set_many({f"{worker}-{i}": worker.encode()})
cache.close()
store.close()
"""


def test_several_processes_write_one_file(db):
    # The file does not exist yet: the processes also race to create the schema and switch to WAL.
    workers = [run_python(WRITER, str(db), str(worker)) for worker in range(4)]
    for proc in workers:
        finish(proc)
    conn = raw(db)
    try:
        assert conn.execute("SELECT count(*) FROM results WHERE run_id = 'shared-run'").fetchone()[0] == 4 * 40 * 2
        assert conn.execute("SELECT count(*) FROM cache").fetchone()[0] == 4 * 40
        info = dict(conn.execute("SELECT key, value FROM run_info WHERE run_id = 'shared-run'").fetchall())
        assert info == {f"worker-{worker}": "39" for worker in range(4)}
    finally:
        conn.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection(store):
    backend = store("r")
    backend.put_results({"parent": b"1"})  # the connection is open before the fork
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            inherited = backend._conn._conn  # SQLite forbids using it in the child; it mostly works, silently
            backend.put_results({"child": b"2"})
            reads = backend.get_results(["parent"]) == {"parent": b"1"}
            code = 0 if reads and backend._conn._conn is not inherited else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert backend.get_results(["parent", "child"]) == {"parent": b"1", "child": b"2"}


# -- URIs and options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sqlite://", "names no database file"),
        ("sqlite:///", "names no database file"),
        ("sqlite://cascade.db", "'sqlite:///cascade.db'"),
        ("sqlite://host/dir/cascade.db", "'sqlite:///host/dir/cascade.db'"),
        ("sqlite:///:memory:", "memory://"),
    ],
)
def test_bad_paths(text, words):
    for open_ in (registry.state_factory, registry.cache_backend):
        with pytest.raises(InvalidURIError) as info:
            open_(BackendURI.parse(text))
        message = str(info.value)
        assert words in message
        assert "\n" not in message


@pytest.mark.parametrize(
    ("query", "key"),
    [("?bogus=1", "bogus"), ("?timeout=-1", "timeout"), ("?timeout=soon", "timeout"), ("?journal=memory", "journal")],
)
def test_bad_options_name_the_key(db, query, key):
    for open_ in (SqliteStateStore.from_uri, SqliteCacheBackend.from_uri):
        with pytest.raises(InvalidURIError) as info:
            open_(uri_of(db, query))
        assert info.value.key == key
        assert repr(key) in str(info.value)
    assert not db.exists()


def test_options_apply(db):
    store = SqliteStateStore.from_uri(uri_of(db, "?timeout=2.5&ttl=60&journal=wal"))  # ttl: one URI for both
    cache = SqliteCacheBackend.from_uri(uri_of(db, "?timeout=2.5&ttl=60"))
    try:
        assert store._db.timeout == 2.5
        assert cache.default_ttl == 60
    finally:
        store.close()
        cache.close()


# -- errors -------------------------------------------------------------------------


def test_missing_directory(tmp_path):
    path = tmp_path / "no-such-dir" / "cascade.db"
    with pytest.raises(BackendUnavailableError, match="does not exist: create it") as info:
        SqliteStateStore.from_uri(uri_of(path))
    assert str(tmp_path / "no-such-dir") in str(info.value)
    assert not path.parent.exists()


def test_path_is_a_directory(tmp_path):
    with pytest.raises(BackendUnavailableError) as info:
        SqliteCacheBackend.from_uri(uri_of(tmp_path))
    assert str(tmp_path) in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_not_a_database(db):
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BackendUnavailableError, match="not a Cascade sqlite database") as info:
        SqliteStateStore.from_uri(uri_of(db))
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_newer_schema_is_refused(db):
    conn = raw(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    for open_ in (SqliteStateStore.from_uri, SqliteCacheBackend.from_uri):
        with pytest.raises(CascadeError, match="newer than the 1 this cascade-core reads: upgrade cascade-core"):
            open_(uri_of(db))


def test_locked_database_is_unavailable_then_recovers(store, db):
    backend = SqliteStateStore.from_uri(uri_of(db, "?timeout=0.2"))("r")
    holder = raw(db)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as info:
            backend.put_results({"a": b"1"})
        assert time.monotonic() - started >= 0.15  # it waited for the lock before giving up
        message = str(info.value)
        assert "locked" in message and str(db) in message and "timeout" in message
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    backend.put_results({"a": b"1"})  # the failed write left no transaction open
    assert backend.get_results(["a"]) == {"a": b"1"}
    backend.close()


@pytest.mark.skipif(not hasattr(sqlite3.Connection, "setlimit"), reason="Connection.setlimit needs Python 3.11")
def test_too_big_is_a_serialization_error(cache):
    with cache._conn.read() as conn:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
    with pytest.raises(SerializationError, match="refused a value"):
        cache.set_many({"big": b"x" * 5000})
    cache.set_many({"small": b"x"})  # the failed batch left no transaction open
    assert cache.get_many(["small", "big"]) == {"small": b"x"}


def test_non_bytes_are_refused(store, cache):
    backend = store("r")
    with pytest.raises(TypeError, match="str"):
        backend.put_results({"a": b"ok", "b": "text"})  # type: ignore[dict-item]
    assert backend.result_ids() == set()
    cache.set_many({"m": memoryview(b"view"), "b": bytearray(b"array")})  # type: ignore[dict-item]
    assert cache.get_many(["m", "b"]) == {"m": b"view", "b": b"array"}


def test_closed_backend_refuses_use(store):
    backend = store("r")
    backend.put_results({"a": b"1"})
    backend.close()
    with pytest.raises(BackendUnavailableError, match="is closed"):
        backend.get_results(["a"])


def test_store_close_closes_its_backends(db):
    store = SqliteStateStore.from_uri(uri_of(db))
    backend = store("r")
    backend.put_results({"a": b"1"})
    store.close()
    store.close()
    with pytest.raises(BackendUnavailableError, match="is closed"):
        backend.result_ids()


# -- state specifics ------------------------------------------------------------------


def test_timestamps_are_recorded_by_the_backend(store):
    backend = store("r")
    backend.set_run_info({"status": "running", "created": "caller value"})
    with frozen_clock() as clock:
        first = backend.get_run_info()
        assert first["created"] != "caller value"
        assert first["created"].endswith("+00:00")
        clock.advance(0.01)
        backend.mark_skipped({"n": "why"})
        second = backend.get_run_info()
    assert second["created"] == first["created"]
    assert second["updated"] > first["updated"]


def test_list_runs_counts_and_order(store):
    older, newer = store("older"), store("newer")
    with frozen_clock() as clock:
        older.put_results({"a": b"1", "b": b"2"})
        clock.advance(0.01)
        newer.set_run_info({"status": "done", "results": "caller value"})
    runs = store.list_runs()
    assert [run["run_id"] for run in runs] == ["older", "newer"]
    assert runs[0]["results"] == "2"
    assert runs[1] == {
        "run_id": "newer",
        "results": "0",
        "status": "done",
        "created": runs[1]["created"],
        "updated": runs[1]["updated"],
    }


def test_delete_run_without_runs_row(store, db):
    # A row written by hand (or by an older version) without its runs row still counts.
    conn = raw(db)
    conn.execute("INSERT INTO results VALUES ('orphan', 'n', x'00')")
    conn.close()
    assert store.delete_run("orphan") is True
    assert store("orphan").result_ids() == set()


# -- cache specifics -------------------------------------------------------------------


def test_default_ttl_from_uri(db):
    cache = SqliteCacheBackend.from_uri(uri_of(db, "?ttl=0.3"))
    try:
        with frozen_clock() as clock:
            cache.set_many({"default": b"1"})
            cache.set_many({"explicit": b"2"}, ttl=3600)
            clock.advance(0.29)
            assert cache.get_many(["default", "explicit"]) == {"default": b"1", "explicit": b"2"}
            clock.advance(0.02)
            assert cache.get_many(["default", "explicit"]) == {"explicit": b"2"}
    finally:
        cache.close()


def test_expired_rows_are_not_counted_and_are_purged(cache, db):
    with frozen_clock() as clock:
        cache.set_many({"old": b"1", "old2": b"2"}, ttl=0.1)
        clock.advance(0.1)  # expired at its expiry moment, not after it
        assert cache.delete_many(["old"]) == 0
        cache.set_many({"new": b"3"})
    conn = raw(db)
    try:
        assert [row[0] for row in conn.execute("SELECT key FROM cache")] == ["new"]
    finally:
        conn.close()


def test_clear_everything(cache):
    cache.set_many({"a": b"1", "b": b"2"})
    assert cache.clear() == 2
    assert cache.get_many(["a", "b"]) == {}


def test_importing_cascade_core_does_not_import_sqlite3():
    out = finish(run_python("import sys, cascade_core; print('sqlite3' in sys.modules)"))
    assert out.strip() == "False"
