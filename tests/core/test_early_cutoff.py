"""Early cutoff (``cache=cs.INPUT_VALUES + cs.TASK_SOURCE``): an upstream that reran to the
same value leaves its downstream's key as it was, so the downstream is a cache hit; a new value
reruns it. Executions are counted."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter

from cascade_test_cli import FLOW_HEAD

import cascade_core as cs
from cascade_core._build.cache_policy import KeyContext, key_maker
from cascade_core._build.hashing import digest

calls: Counter = Counter()


def _tasks(version: str, compute, down_cache=cs.INPUT_VALUES + cs.TASK_SOURCE):
    """An upstream of this version, a downstream cached by its value, and a plain cached final task."""

    @cs.task(name="ec.up", cache=True, version=version)
    def up(x):
        calls["up"] += 1
        return compute(x)

    @cs.task(name="ec.down", cache=down_cache, version="1")
    def down(y, label="n"):
        calls["down"] += 1
        return f"{label}={y}"

    @cs.task(name="ec.final", cache=True, version="1")
    def final(text):
        calls["final"] += 1
        return text.upper()

    return lambda: final(down(up(3)))


def _run(pipeline, cache) -> Counter:
    calls.clear()
    assert cs.run(pipeline(), cache_backend=cache) in ("N=6", "N=9")
    return +calls


def test_an_upstream_that_reran_to_the_same_value_leaves_its_downstream_cached():
    cache = cs.MemoryCacheBackend()
    assert _run(_tasks("1", lambda x: x * 2), cache) == Counter({"up": 1, "down": 1, "final": 1})
    assert _run(_tasks("1", lambda x: x * 2), cache) == Counter()  # warm: nothing runs
    # New code, same value: only the upstream runs; the downstream's key and its own downstream's stay.
    assert _run(_tasks("2", lambda x: x + x), cache) == Counter({"up": 1})
    # New code, another value: everything below it reruns.
    assert _run(_tasks("3", lambda x: x * 3), cache) == Counter({"up": 1, "down": 1, "final": 1})
    assert _run(_tasks("3", lambda x: x * 3), cache) == Counter()


def test_without_input_values_the_downstream_reruns():
    cache = cs.MemoryCacheBackend()
    _run(_tasks("1", lambda x: x * 2, down_cache=True), cache)
    assert _run(_tasks("2", lambda x: x + x, down_cache=True), cache) == Counter({"up": 1, "down": 1, "final": 1})


def test_an_input_values_key_keeps_its_format():
    """A cached upstream enters by ``digest(encode(value))``, its literal arguments as for INPUTS;
    the part is ``values`` (docs/concepts.md, "Caching")."""

    @cs.task(name="ec.pinned", cache=cs.INPUT_VALUES, version="1")
    def pinned(x):
        return x

    assert key_maker(pinned, "r")(b"in") == f"ec.pinned:{digest(chr(0).join(('values', digest(b'in'))).encode())}"
    parts = cs.INPUT_VALUES.parts(KeyContext(pinned, "d", "r"))
    assert parts == ("values", "d")
    cache = cs.MemoryCacheBackend()
    pipeline = _tasks("1", lambda x: x * 2)
    cs.run(pipeline(), cache_backend=cache)
    assert len(cache.get_many(["ec.down:6cbe4274f9f746601c12a54d5f175f39"])) == 1


FLOW = (
    FLOW_HEAD
    + """
@cs.task(cache=True)
def up(x):
    note("up")
    return x * 2


@cs.task(cache=cs.INPUT_VALUES + cs.TASK_SOURCE)
def down(y):
    note("down")
    return y + 1


def pipeline():
    return down(up(3))
"""
)

RUN = """
import sys

sys.path.insert(0, {here!r})
import cascade_core, flow

cascade_core.run(flow.pipeline(), cache_backend={c!r})
"""


def test_editing_the_upstreams_code_to_the_same_value_reruns_only_it(tmp_path):
    flow = tmp_path / "flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    log = tmp_path / "calls.log"
    script = RUN.format(here=str(tmp_path), c=f"sqlite:///{tmp_path / 'cache.db'}")

    def run() -> list[str]:
        log.write_text("")
        env = {**os.environ, "FLOW_LOG": str(log)}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return sorted(log.read_text().split())

    assert run() == ["down", "up"]
    assert run() == []
    flow.write_text(flow.read_text().replace("return x * 2", "return x + x"))
    assert run() == ["up"]
    flow.write_text(flow.read_text().replace("return x + x", "return x * 3"))
    assert run() == ["down", "up"]


def test_explain_computes_early_cutoff_keys_from_cached_values_and_waits_for_values_that_run():
    cache = cs.MemoryCacheBackend()
    cs.run(_tasks("1", lambda x: x * 2)(), cache_backend=cache)
    warm = cs.explain(_tasks("1", lambda x: x * 2)(), cache_backend=cache)
    assert [(node.task, node.prediction) for node in warm.nodes] == [
        ("ec.up", "cache"),
        ("ec.down", "cache"),
        ("ec.final", "cache"),
    ]
    edited = cs.explain(_tasks("2", lambda x: x + x)(), cache_backend=cache)
    assert [(node.task, node.prediction, node.cause) for node in edited.nodes] == [
        ("ec.up", "run", "no entry"),
        ("ec.down", "unknown", "key after upstream"),
        ("ec.final", "unknown", "key after upstream"),
    ]
    assert edited.nodes[1].reason == (
        "its cache key needs the values of ec.up (INPUT_VALUES: early cutoff), computed first"
    )
    calls.clear()
    cs.run(_tasks("2", lambda x: x + x)(), cache_backend=cache)
    assert +calls == Counter({"up": 1})  # the unknowns were hits
