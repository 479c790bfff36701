"""Bad input to the ``cascade`` command: exit 2, one ``error:`` line on stderr, no traceback unless --debug."""

from __future__ import annotations

from pathlib import Path

import pytest
from cascade_test_cli import cli

FLOW = """
import cascade_core as cs

fail = cs.Param("fail", default=False, type=bool)
count = cs.Param("count", default=1, type=int)
NOT_LAZY = 42


@cs.task
def work(fail: bool, count: int) -> int:
    if fail:
        raise RuntimeError("failing on purpose")
    return count


def pipeline():
    return work(fail, count)


def needs_an_argument(x):
    return work(fail, count)
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    (tmp_path / "broken.py").write_text("import cascade_core as cs\nraise ValueError('broken at import')\n")
    (tmp_path / "syntax.py").write_text("def (:\n")
    # A store holding one run, for the commands that need an existing store.
    done = cli(tmp_path, "run", "flow.py:pipeline", "--run-id", "known")
    assert done.returncode == 0, done.stderr
    return tmp_path


BAD = {
    "unknown command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "no command": ([], "required: COMMAND"),
    "unknown option": (["run", "flow.py:pipeline", "--frob"], "unrecognized arguments: --frob"),
    "runs without action": (["runs"], "required: ACTION"),
    "malformed URI": (["run", "flow.py:pipeline", "--state", "not-a-uri"], "malformed backend URI 'not-a-uri'"),
    "unknown scheme": (["run", "flow.py:pipeline", "--cache", "nosuch://x"], "unknown backend scheme 'nosuch'"),
    "bad URI option": (["run", "flow.py:pipeline", "--state", "sqlite:///x.db?timeout=soon"], "timeout"),
    "missing target file": (["run", "missing.py:pipeline"], "no such file: missing.py"),
    "target without name": (["run", "flow.py"], "must look like path/to/file.py:NAME"),
    "missing attribute": (["run", "flow.py:nothing"], "flow.py has no attribute 'nothing'"),
    "not lazy": (["run", "flow.py:NOT_LAZY"], "flow.py:NOT_LAZY is int, not a lazy result"),
    "function needing arguments": (["run", "flow.py:needs_an_argument"], "calling flow.py:needs_an_argument()"),
    "file failing at import": (["run", "broken.py:x"], "importing broken.py failed: ValueError: broken at import"),
    "file with a syntax error": (["run", "syntax.py:x"], "importing syntax.py failed: SyntaxError"),
    "unknown module": (["run", "no_such_module_here:x"], "no module named 'no_such_module_here'"),
    "param without =": (["run", "flow.py:pipeline", "--param", "fail"], "--param takes NAME=VALUE, got 'fail'"),
    "unknown param": (["run", "flow.py:pipeline", "--param", "nope=1"], "unknown param 'nope'"),
    "wrong param type": (["run", "flow.py:pipeline", "-p", "count=many"], "param 'count' expects int"),
    "wrong bool param": (["run", "flow.py:pipeline", "-p", "fail=perhaps"], "param 'fail' expects bool"),
    "zero workers": (["run", "flow.py:pipeline", "--workers", "0"], "--workers: must be a whole number >= 1"),
    "negative workers": (["run", "flow.py:pipeline", "--workers=-3"], "--workers: must be a whole number >= 1"),
    "bad run id": (["run", "flow.py:pipeline", "--run-id", "has space"], "run_id must be"),
    "show unknown run": (["runs", "show", "nope"], "no run 'nope' in sqlite:///.cascade.db"),
    "forget unknown run": (["runs", "forget", "nope"], "no run 'nope' in sqlite:///.cascade.db"),
    "show in a missing store": (["runs", "show", "known", "--state", "sqlite:///other.db"], "no run 'known'"),
    "no run catalog": (["runs", "list", "--state", "nosuch://x"], "unknown backend scheme"),
}


@pytest.mark.parametrize("args, expected", list(BAD.values()), ids=list(BAD))
def test_bad_input_is_one_error_line_and_exit_2(flow, args, expected):
    done = cli(flow, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("executor", "expected"),
    [
        (
            "threads://?max_workers=2",
            "error: --workers 3 conflicts with the executor threads://?max_workers=2, which runs 2 at once: "
            "give the number once, in the URI or as --workers",
        ),
        (
            "inline://",
            "error: --workers 3 does not apply to the executor inline://, which takes no max_workers option and "
            "runs 1 at once: drop --workers, or choose an executor that takes it, such as threads://?max_workers=3",
        ),
    ],
)
def test_a_workers_conflict_names_the_flag_the_user_typed(flow, executor, expected):
    done = cli(flow, "run", "flow.py:pipeline", "--workers", "3", "--executor", executor, "--run-id", "w3")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == expected + "\n"
    assert "w3" not in cli(flow, "runs", "list").stdout  # refused before the run started
    as_json = cli(flow, "run", "flow.py:pipeline", "--workers", "3", "--executor", executor, "--json")
    assert as_json.returncode == 2 and '"error_type": "UsageError"' in as_json.stdout


def test_read_only_commands_do_not_create_a_missing_sqlite_store(flow):
    assert cli(flow, "runs", "show", "x", "--state", "sqlite:///other.db").returncode == 2
    listed = cli(flow, "runs", "list", "--state", "sqlite:///other.db")
    assert listed.returncode == 0 and listed.stdout == "no runs in sqlite:///other.db\n"
    cleared = cli(flow, "cache", "clear", "--cache", "sqlite:///other.db")
    assert cleared.returncode == 0 and "removed 0 cache entries" in cleared.stdout
    assert not (flow / "other.db").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(flow, where):
    args = ["run", "flow.py:pipeline", "--param", "nope=1"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    done = cli(flow, *args)
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert "ParamError" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: unknown param 'nope'")


def test_debug_shows_the_traceback_of_the_workflow_import(flow):
    done = cli(flow, "--debug", "run", "broken.py:x")
    assert done.returncode == 2
    assert "ValueError: broken at import" in done.stderr and "Traceback" in done.stderr


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["runs"], ["runs", "list"], ["runs", "show"], ["runs", "forget"], ["cache"], ["cache", "clear"]],
)
def test_help_everywhere(flow, command):
    done = cli(flow, *command, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: cascade")
    assert "--debug" in done.stdout


def test_version(flow):
    import cascade_core

    done = cli(flow, "--version")
    assert done.returncode == 0
    assert done.stdout == f"cascade-core {cascade_core.__version__}\n"
