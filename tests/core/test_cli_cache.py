"""``cascade cache clear``: names the store, counts in words, refuses an empty ``--task``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cascade_test_cli import STATE, STORE, calls, cli, ok, write_flow


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    return write_flow(tmp_path)


def test_cache_clear_names_the_store_and_counts_in_words(flow):
    ok(flow, "run", "flow.py:pipeline", *STORE)
    ok(flow, "run", "flow.py:single", *STORE)
    done = ok(flow, "cache", "clear", "--cache", STATE, "--task", "flow.load")
    assert done.stdout == "removed 3 cache entries of task flow.load from sqlite:///runs.db\n"
    ok(flow, "run", "flow.py:single", *STORE)
    done = ok(flow, "cache", "clear", "--cache", STATE)
    assert done.stdout == "removed 1 cache entry from sqlite:///runs.db\n"
    done = ok(flow, "cache", "clear", "--cache", STATE, "--task", "flow.load")
    assert done.stdout == "removed 0 cache entries of task flow.load from sqlite:///runs.db\n"


@pytest.mark.parametrize("task", ["", " ", "\t\n"])
def test_cache_clear_with_an_empty_task_is_a_usage_error_and_deletes_nothing(flow, task):
    ok(flow, "run", "flow.py:pipeline", *STORE)
    assert calls(flow)["load"] == 2
    done = cli(flow, "cache", "clear", "--cache", STATE, "--task", task)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "error: --task is empty: give a task's full name (as 'cascade runs show' prints it), or omit --task\n"
    )
    # Every entry is still there: a second run computes nothing cached again, and clearing finds them.
    report = json.loads(ok(flow, "run", "flow.py:pipeline", *STORE, "--json").stdout)
    assert report["counts"]["cached"] == 2 and calls(flow)["load"] == 2
    done = ok(flow, "cache", "clear", "--cache", STATE, "--task", "flow.load")
    assert done.stdout.startswith("removed 2 cache entries of task flow.load ")
