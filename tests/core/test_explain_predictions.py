"""``cs.explain`` predicts exactly what the next run does: 20 randomized edit scenarios (edit a
helper, edit a comment, change a param, expire an entry, delete the run's state), each followed
by a real run in a new process, compared node by node (and with the executions counted)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cascade_test_cli import FLOW_HEAD

HELPERS = """
OFFSET = 0


def base(i):
    return i + OFFSET


def mult(x):
    return base(x) * 2
"""

FLOW = (
    FLOW_HEAD
    + """
import helpers


@cs.task(cache=True)
def load(i):
    note("load")
    return helpers.base(i)


@cs.task(cache=True)
def scale(x):
    note("scale")
    return helpers.mult(x)


@cs.task(cache=True)
def total(values):
    note("total")
    return sum(values)


@cs.task
def report(t):
    note("report")
    return str(t)


def pipeline(n):
    return report(total([scale(load(i)) for i in range(n)]))
"""
)

STEP = """
import json
import sys

sys.path.insert(0, {here!r})
import cascade_core as cs
import flow

STORE = {store!r}
OUTCOMES = {{"resumed": "resume", "not needed": "not needed"}}


class Seen:
    def __init__(self):
        self.outcome = {{}}

    @cs.hookimpl
    def cascade_task_finished(self, node_id, cached):
        self.outcome[node_id] = "cache" if cached else "run"

    @cs.hookimpl
    def cascade_task_skipped(self, node_id, reason):
        self.outcome[node_id] = OUTCOMES.get(reason, reason)


n, run_id = int(sys.argv[1]), sys.argv[2]
explained = cs.explain(flow.pipeline(n), state_backend=STORE, cache_backend=STORE, run_id=run_id)
seen = Seen()
cs.run(flow.pipeline(n), state_backend=STORE, cache_backend=STORE, run_id=run_id, observers=[seen])
print(json.dumps({{"explained": explained.as_dict()["nodes"], "actual": seen.outcome}}))
"""

KINDS = ("edit helper", "edit comment", "change param", "expire entry", "delete state")


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = f"sqlite:///{root / 'store.db'}"
        self.log = root / "calls.log"
        (root / "helpers.py").write_text(textwrap.dedent(HELPERS))
        (root / "flow.py").write_text(textwrap.dedent(FLOW))
        (root / "step.py").write_text(STEP.format(here=str(root), store=self.store))

    def step(self, n: int, run_id: str) -> tuple[list[dict], dict[str, str], list[str]]:
        """Explain, then run, in a new process: the predictions, the outcomes, the executions."""
        self.log.write_text("")
        done = subprocess.run(
            [sys.executable, str(self.root / "step.py"), str(n), run_id],
            env={**os.environ, "FLOW_LOG": str(self.log)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.splitlines()[-1])
        return out["explained"], out["actual"], self.log.read_text().split()

    def edit(self, name: str, change) -> None:
        path = self.root / name
        path.write_text(change(path.read_text()))


def _comment_edit(rng: random.Random):
    edits = [
        lambda text: text.replace("def base(i):\n", "def base(i):\n    # the base value\n", 1),
        lambda text: text.replace("def mult(x):\n", '\n\ndef mult(x):\n    """Twice the base."""\n', 1),
        lambda text: text + "\n\n# the end\n",
        lambda text: text.replace("    return base(x) * 2", "    return (base(x)\n            * 2)", 1),
    ]
    return rng.choice(edits)


def _open(kind: str, uri: str):
    from cascade_core._plugins.registry import registry
    from cascade_core._uri import BackendURI

    parsed = BackendURI.parse(uri)
    return registry.cache_backend(parsed) if kind == "cache" else registry.state_factory(parsed)


@pytest.mark.slow
def test_explain_predicts_every_node_of_the_next_run_in_20_random_scenarios(tmp_path):
    rng = random.Random(int(os.environ.get("CASCADE_EXPLAIN_SEED", "27")))
    project = Project(tmp_path)
    n, offset, factor, run_id = 3, 0, 2, "r0"
    explained, actual, executed = project.step(n, run_id)  # cold
    assert {node["prediction"] for node in explained} == {"run"}
    seen_kinds = set()
    for number in range(20):
        kind = KINDS[number] if number < len(KINDS) else rng.choice(KINDS)  # every kind at least once
        seen_kinds.add(kind)
        keys = [node["key"] for node in explained if node["key"]]
        expired = None
        for node in (node for node in explained if expired is not None and node["key"] == expired):
            assert node["prediction"] in ("resume", "not needed") or node["cause"] == "expired"
        if kind == "edit helper":
            if rng.random() < 0.5:
                offset += 1
                project.edit("helpers.py", lambda text, o=offset: text.replace(f"OFFSET = {o - 1}", f"OFFSET = {o}"))
            else:
                factor += 1
                project.edit("helpers.py", lambda text, f=factor: text.replace(f"* {f - 1}", f"* {f}"))
        elif kind == "edit comment":
            project.edit("helpers.py", _comment_edit(rng))
        elif kind == "change param":
            n = rng.choice([value for value in (2, 3, 4) if value != n])
        elif kind == "expire entry":
            expired = rng.choice(keys)
            cache = _open("cache", project.store)
            try:
                assert cache.delete_many([expired]) == 1
            finally:
                cache.close()
            if rng.random() < 0.5:  # a new run: it cannot resume, the entry is missed
                run_id = f"r{number}"
        else:
            factory = _open("state", project.store)
            try:
                assert factory.delete_run(run_id)
            finally:
                factory.close()
        explained, actual, executed = project.step(n, run_id)
        predicted = {node["node_id"]: node["prediction"] for node in explained}
        assert predicted == actual, f"scenario {number} ({kind})"
        runs = sorted(node["task"].rpartition(".")[2] for node in explained if node["prediction"] == "run")
        assert sorted(executed) == runs, f"scenario {number} ({kind})"
        causes = {node["cause"] for node in explained if node["prediction"] == "run"}
        if kind == "edit comment":
            assert runs == [], f"scenario {number}: a comment reran {runs}"
        for node in (node for node in explained if expired is not None and node["key"] == expired):
            assert node["prediction"] in ("resume", "not needed") or node["cause"] == "expired"
        if kind == "edit helper":
            assert "load" in runs or "scale" in runs
            assert causes <= {"code changed", "no entry", "upstream reran", "not cached", "expired", "inputs changed"}
    assert seen_kinds == set(KINDS)
