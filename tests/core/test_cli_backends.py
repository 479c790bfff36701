"""``cascade backends check``: a report (JSON under --json), and a check that creates and writes
nothing in a file that is missing, empty or not a Cascade database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cascade_test_cli import cli, ok, write_flow


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    return write_flow(tmp_path)


def test_backends_check_json_of_a_good_uri_is_the_report(flow):
    ok(flow, "run", "flow.py:pipeline", "--state", "sqlite:///check.db", "--cache", "memory://")
    before = (flow / "check.db").read_bytes()
    report = json.loads(ok(flow, "backends", "check", "sqlite:///check.db", "--json").stdout)
    assert report["ok"] is True and {check["backend"] for check in report["checks"]} == {"state", "cache"}
    assert {check["detail"] for check in report["checks"]} == {f"{flow / 'check.db'}, schema version 1"}
    # The probe was deleted again: the store lists the same single run.
    assert len(json.loads(ok(flow, "runs", "list", "--state", "sqlite:///check.db", "--json").stdout)) == 1
    assert len((flow / "check.db").read_bytes()) == len(before)


def test_backends_check_of_a_missing_sqlite_file_creates_nothing_and_says_so(flow):
    done = cli(flow, "backends", "check", "sqlite:///x.db")
    assert done.returncode == 1 and done.stderr == ""
    missing = f"sqlite database {flow / 'x.db'} does not exist (a check creates nothing): the first run with this URI"
    lines = done.stdout.splitlines()
    assert [line.split(": FAILED: ")[0] for line in lines] == ["sqlite:///x.db state", "sqlite:///x.db cache"]
    assert all(line.split(": FAILED: ")[1].startswith(missing + " creates it, or point") for line in lines), lines
    report = json.loads(cli(flow, "backends", "check", "sqlite:///sub/x.db", "--json").stdout)
    assert report["ok"] is False
    assert all(f"creates it once directory {flow / 'sub'} exists" in check["error"] for check in report["checks"])
    assert sorted(path.name for path in flow.iterdir()) == ["flow.py"]  # no x.db, no x.db-wal, no sub/


def test_backends_check_writes_nothing_into_a_file_that_is_not_a_cascade_database(flow):
    import sqlite3

    (flow / "empty.db").touch()
    with sqlite3.connect(flow / "other.db") as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    before = {name: (flow / name).read_bytes() for name in ("empty.db", "other.db")}
    empty = cli(flow, "backends", "check", "sqlite:///empty.db")
    assert empty.returncode == 1 and f"sqlite database {flow / 'empty.db'} is empty: a check writes" in empty.stdout
    other = cli(flow, "backends", "check", "sqlite:///other.db")
    assert other.returncode == 1
    assert f"sqlite database {flow / 'other.db'} is not a Cascade database (its tables: notes)" in other.stdout
    assert {name: (flow / name).read_bytes() for name in before} == before
    assert sorted(path.name for path in flow.iterdir()) == ["empty.db", "flow.py", "other.db"]
