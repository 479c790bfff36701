"""Exit codes of the ``cascade`` command: 2 only for bad input, 1 for a store, plugin or payload
that failed (docs/cli.md's table), through real commands and against the table itself."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import cascade_core._errors as errors
from cascade_core.cli._exit import exit_code

DOCS = Path(__file__).resolve().parents[2] / "docs"

FLOW = """
import threading
import cascade_core as cs


@cs.task
def one() -> int:
    return 1


@cs.task
def two(x: int) -> int:
    return x + 1


@cs.task(cache=True)
def keyed(lock) -> int:
    return 1


NOT_LAZY = 42


def pipeline():
    return two(one())


def unhashable():
    return keyed(threading.Lock())


def cyclic():
    first = one()
    second = two(first)
    first.after(second)
    return second
"""

# A real CLI process with one provider registered at runtime whose state hook returns the wrong thing.
BROKEN_PLUGIN_CLI = """
import sys
import cascade_core as cs


class Broken:
    @cs.hookimpl
    def cascade_state_backend(self, uri):
        return 42


cs.register_backend("broken", Broken())
from cascade_core.cli._main import main

sys.exit(main(sys.argv[1:]))
"""


def every_error() -> list[type[errors.CascadeError]]:
    found, todo = [], [errors.CascadeError]
    while todo:
        cls = todo.pop()
        subclasses = [c for c in cls.__subclasses__() if c.__module__.startswith("cascade_core")]
        found += subclasses
        todo += subclasses
    return sorted(set(found), key=lambda c: c.__name__)


def documented_codes() -> dict[str, int]:
    """``error name -> exit code`` from the third column of docs/cli.md's exit-code table."""
    text = (DOCS / "cli.md").read_text()
    table = text[text.index("| exit code |") :].split("\n\n", 1)[0]
    codes = {}
    for row in table.splitlines()[2:]:
        code, _, names = (cell.strip() for cell in row.strip().strip("|").split("|"))
        for name in re.findall(r"`(\w+)`", names):
            codes[name] = int(code)
    return codes


def test_the_table_names_every_error_class_with_the_code_it_exits_with():
    documented = documented_codes()
    assert set(documented) == {cls.__name__ for cls in every_error()}
    for cls in every_error():
        assert exit_code(cls.__new__(cls)) == documented[cls.__name__], cls.__name__


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("UsageError", 2),
        ("TargetError", 2),
        ("CycleError", 2),
        ("ParamError", 2),
        ("HashingError", 2),
        ("InvalidURIError", 2),
        ("BackendNotFoundError", 2),
        ("NotProvidedError", 2),
        ("ConfigurationError", 2),
        ("BackendError", 1),
        ("PluginError", 1),
        ("BackendUnavailableError", 1),
        ("SerializationError", 1),
        ("IntegrityError", 1),
        ("BlobError", 1),
        ("RunInUseError", 1),
        ("TaskFailed", 1),
    ],
)
def test_each_error_maps_to_its_code(name, code):
    cls = getattr(errors, name)
    assert exit_code(cls.__new__(cls)) == code


def cli(
    cwd: Path, *args: str, entry: tuple[str, ...] = ("-m", "cascade_core"), **env: str
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")} | env
    return subprocess.run(
        [sys.executable, *entry, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def assert_json_error(done: subprocess.CompletedProcess, error_type: str, code: int) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    error = json.loads(done.stdout)
    assert (error["error_type"], error["exit_code"]) == (error_type, code), error
    assert done.stderr.endswith(f"error: {error['error']}\n") and "Traceback" not in done.stderr


STORE = ["--state", "sqlite:///s.db", "--cache", "sqlite:///s.db"]


@pytest.mark.parametrize(
    ("args", "env", "error_type", "code"),
    [
        (["run", "flow.py:pipeline", "--frob"], {}, "UsageError", 2),
        (["run", "flow.py:nosuch"], {}, "UsageError", 2),
        (["run", "flow.py:NOT_LAZY"], {}, "TargetError", 2),
        (["run", "flow.py:cyclic", *STORE], {}, "CycleError", 2),
        (["run", "flow.py:pipeline", "--param", "nosuch=1", *STORE], {}, "ParamError", 2),
        (["run", "flow.py:unhashable", *STORE], {}, "HashingError", 2),
        (["run", "flow.py:pipeline", "--state", "sqlite://host/x.db"], {}, "InvalidURIError", 2),
        (["run", "flow.py:pipeline", "--state", "nosuch://x"], {}, "BackendNotFoundError", 2),
        (["run", "flow.py:pipeline", *STORE, "--executor", "sqlite:///x.db"], {}, "NotProvidedError", 2),
        (["run", "flow.py:pipeline", *STORE], {"CASCADE_SECRET_KEY": "  "}, "ConfigurationError", 2),
        (["run", "flow.py:pipeline", "--state", "sqlite:///no/such/dir/x.db"], {}, "BackendUnavailableError", 1),
    ],
)
def test_real_commands_exit_with_the_code_of_their_error(flow, args, env, error_type, code):
    assert_json_error(cli(flow, *args, "--json", **env), error_type, code)
    plain = cli(flow, *args, **env)
    assert plain.returncode == code and plain.stdout == ""


def test_a_corrupt_stored_result_is_a_failure_not_bad_usage(flow):
    done = cli(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "r1", "--no-progress")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(flow / "s.db") as db:  # flip the last byte of every stored result
        for run_id, node_id, payload in db.execute("SELECT run_id, node_id, payload FROM results").fetchall():
            flipped = payload[:-1] + bytes([payload[-1] ^ 1])
            db.execute("UPDATE results SET payload = ? WHERE run_id = ? AND node_id = ?", (flipped, run_id, node_id))
    done = cli(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "r1", "--json")
    assert_json_error(done, "IntegrityError", 1)
    assert "fails its checksum" in json.loads(done.stdout)["error"]


def test_a_plugin_that_returns_the_wrong_thing_is_a_failure(flow):
    (flow / "broken_cli.py").write_text(BROKEN_PLUGIN_CLI)
    done = cli(flow, "run", "flow.py:pipeline", "--state", "broken://x", "--json", entry=("broken_cli.py",))
    assert_json_error(done, "PluginError", 1)
    assert "returned int from cascade_state_backend" in json.loads(done.stdout)["error"]


def test_a_run_held_by_another_driver_prints_the_json_error_on_stdout(tmp_path, drivers):
    (tmp_path / "flow.py").write_text(drivers.CLI_FLOW)
    log = tmp_path / "events.log"
    state = f"sqlite:///{tmp_path / 'held.db'}"
    args = ("run", "flow.py:target", "--state", state, "--cache", state, "--run-id", "held", "--no-progress")
    first = drivers.cli(tmp_path, *args, LOG=str(log), SLOW="1.5")
    try:
        drivers.wait_for(log, "start slow-0")
        second = drivers.cli(tmp_path, *args, "--json", LOG=str(log))
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1, (out, err)
        error = json.loads(out)
        assert (error["error_type"], error["exit_code"]) == ("RunInUseError", 1)
        assert error["error"].startswith(f"run 'held' is already being run by {drivers.holder(first.pid)} (since ")
        assert err == f"error: {error['error']}\n"
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert drivers.events(log)["start total"] == 1


def test_the_tree_drawn_in_concepts_md_is_the_one_in_the_errors_module():
    text = (DOCS / "concepts.md").read_text()
    drawn = text[text.index("\nCascadeError ") + 1 :].split("```", 1)[0].splitlines()
    tree = [line[4:] for line in (errors.__doc__ or "").splitlines() if line.startswith("    ") and line.strip()]
    assert drawn == tree
    named = set(re.findall(r"(\w+Error|TaskFailed|TaskTimeout)\s", "\n".join(drawn)))
    assert named == {cls.__name__ for cls in every_error()} | {"CascadeError"}
