"""What the docs state about paths in URIs and the sqlite schema is what the code does:
every example of docs/plugins.md's path table resolves to the path the table gives, and
docs/backends.md's table of sqlite tables is the schema of a real database file."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest

import cascade_core as cs
from cascade_core.plugin import InvalidURIError, parse_uri

DOCS = Path(__file__).resolve().parents[2] / "docs"


def path_rows() -> list[tuple[str, str, str]]:
    """(scheme, example URI, the path it names) for each example of the path table."""
    text = (DOCS / "plugins.md").read_text()
    table = text[text.index("| scheme | convention |") :].split("\n\n", 1)[0]
    rows = []
    for row in table.splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        scheme = re.match(r"`(\S+)://`", cells[0]).group(1)  # type: ignore[union-attr]
        for uri, path in ((cells[2], cells[3]), (cells[4], cells[5])):
            if uri.startswith("`"):
                rows.append((scheme, uri.strip("`"), path.strip("`")))
    return rows


def resolved(scheme: str, uri: str) -> str:
    """The file, folder or socket that the scheme's own code opens for ``uri``."""
    if scheme == "sqlite":
        from cascade_core.backends.sqlite_db import path_from_uri

        return path_from_uri(parse_uri(uri))
    if scheme == "file":
        from cascade_core.blobs.builtin import file

        return file.cascade_blob_store(parse_uri(uri)).root
    if scheme == "redis+unix":
        options = pytest.importorskip("cascade_redis.options")
        return options.RedisOptions.from_uri(uri).unix_socket_path  # type: ignore[return-value]
    raise AssertionError(f"no resolver for {scheme}:// in this test: add one")


def test_the_table_has_an_absolute_example_of_every_built_in_path_scheme():
    rows = path_rows()
    assert {scheme for scheme, _, _ in rows} == {"sqlite", "file", "redis+unix"}
    assert all(
        any(s == scheme and p.startswith("/") for s, _, p in rows) for scheme in ("sqlite", "file", "redis+unix")
    )
    assert sum(p.startswith("<cwd>/") for _, _, p in rows) == 2  # sqlite and file have a relative form


@pytest.mark.parametrize(("scheme", "uri", "path"), path_rows())
def test_each_example_resolves_to_the_path_the_table_gives(scheme, uri, path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolved(scheme, uri) == path.replace("<cwd>", os.getcwd())


@pytest.mark.parametrize(
    ("uri", "shows"),
    [("sqlite://name/x.db", "sqlite:///name/x.db"), ("redis+unix://h/x.sock", "redis+unix:///path/to/redis.sock")],
)
def test_a_host_where_the_convention_has_none_is_refused_with_the_right_form(uri, shows):
    with pytest.raises(InvalidURIError) as refused:
        resolved(uri.split("://")[0], uri)
    assert shows in str(refused.value)


def test_file_takes_no_host_so_localhost_starts_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # docs/plugins.md: the one departure from RFC 8089
    assert resolved("file", "file://localhost/x") == os.path.join(os.getcwd(), "localhost", "x")


@cs.task
def _one() -> int:
    return 1


def test_the_documented_sqlite_schema_is_the_schema_of_a_real_file(tmp_path):
    uri = f"sqlite:///{tmp_path / 'schema.db'}"
    cs.run(_one(), state_backend=uri, cache_backend=uri)
    with sqlite3.connect(tmp_path / "schema.db") as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        actual = {
            table: [(name, kind) for _, name, kind, *_ in db.execute(f"PRAGMA table_info({table})")] for table in tables
        }
        (version,) = db.execute("PRAGMA user_version").fetchone()
    text = (DOCS / "backends.md").read_text()
    assert f"The schema, version {version} " in text
    table = text[text.index("| table | columns (primary key first) | holds |") :].split("\n\n", 1)[0]
    documented = {}
    for row in table.splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        documented[cells[0].strip("`")] = [tuple(c.split()) for c in re.findall(r"`(\w+ [A-Z]+)`", cells[1])]
    assert documented == actual
