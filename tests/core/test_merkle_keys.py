"""Cache keys that are node hashes (format 2): they change exactly when the old ones did.

A node of a task cached by INPUTS [+ TASK_SOURCE] whose upstreams are such nodes gets its
cache key from its own Merkle hash; every other cached node keeps the general definition.
Each test counts executions: a key that changed when it must not runs a task twice, a key
that did not change when it must serves a stale value.
"""

from __future__ import annotations

import collections

import cascade_core as cs

RAN: collections.Counter[str] = collections.Counter()


def _tasks(leaf_version="1", leaf_cache=True, down_version="1"):
    @cs.task(name="merkle.leaf", cache=leaf_cache, version=leaf_version)
    def leaf(x):
        RAN["leaf"] += 1
        return x * 10

    @cs.task(name="merkle.down", cache=True, version=down_version)
    def down(x, y=0):
        RAN["down"] += 1
        return x + y + 1

    return leaf, down


def setup_function():
    RAN.clear()


def test_a_new_upstream_version_reruns_it_and_its_downstream():
    cache = cs.MemoryCacheBackend()
    leaf, down = _tasks("1")
    assert cs.run(down(leaf(2)), cache_backend=cache) == 21
    assert cs.run(down(leaf(2)), cache_backend=cache) == 21
    assert RAN == {"leaf": 1, "down": 1}
    leaf, down = _tasks("2")
    assert cs.run(down(leaf(2)), cache_backend=cache) == 21
    assert RAN == {"leaf": 2, "down": 2}


def test_an_upstream_cached_by_inputs_only_keeps_its_key_across_versions():
    cache = cs.MemoryCacheBackend()
    leaf, down = _tasks("1", leaf_cache=cs.INPUTS)
    cs.run(down(leaf(2)), cache_backend=cache)
    leaf, down = _tasks("2", leaf_cache=cs.INPUTS)
    assert cs.run(down(leaf(2)), cache_backend=cache) == 21
    assert RAN == {"leaf": 1, "down": 1}  # the upstream's key ignores its version, so the downstream's does too


def test_switching_a_policy_changes_the_key():
    cache = cs.MemoryCacheBackend()
    leaf, _ = _tasks(leaf_cache=cs.INPUTS)
    cs.run(leaf(3), cache_backend=cache)
    leaf, _ = _tasks(leaf_cache=cs.INPUTS + cs.TASK_SOURCE)
    cs.run(leaf(3), cache_backend=cache)
    assert RAN["leaf"] == 2


def test_a_downstream_of_a_repeated_call_hits_the_entry_of_an_unrepeated_one():
    cache = cs.MemoryCacheBackend()
    leaf, down = _tasks()
    cs.run(down(leaf(4)), cache_backend=cache)
    # The second leaf(4) is the same call again: its node id has an occurrence suffix, its key does not.
    assert cs.run([leaf(4), down(leaf(4))], cache_backend=cache) == [40, 41]
    assert RAN == {"leaf": 1, "down": 1}


def test_an_uncached_upstream_inside_a_nested_argument_still_enters_by_its_value(tmp_path):
    source = tmp_path / "value.txt"
    source.write_text("1")

    @cs.task(name="merkle.read")
    def read():
        return int(source.read_text())

    @cs.task(name="merkle.nested", cache=True)
    def nested(groups):
        RAN["nested"] += 1
        return sum(sum(group) for group in groups)

    cache = cs.MemoryCacheBackend()
    assert cs.run(nested([[read()], [5]]), cache_backend=cache) == 6
    assert cs.run(nested([[read()], [5]]), cache_backend=cache) == 6
    source.write_text("3")
    assert cs.run(nested([[read()], [5]]), cache_backend=cache) == 8
    assert RAN["nested"] == 2


def test_a_resume_after_a_new_version_recomputes_that_task(tmp_path):
    state = f"sqlite:///{tmp_path / 'state.db'}"
    leaf, down = _tasks("1")
    cs.run(down(leaf(2)), state_backend=state, run_id="r1")  # stored in the run's state
    leaf, down = _tasks("2", down_version="1")
    assert cs.run(down(leaf(2)), state_backend=state, run_id="r1", cache_backend=cs.MemoryCacheBackend()) == 21
    assert RAN == {"leaf": 2, "down": 2}  # its node ids changed with the version: nothing stale is resumed


def test_params_keywords_and_nested_lists_enter_the_key_by_value():
    @cs.task(name="merkle.mixed", cache=True)
    def mixed(groups, *, scale):
        RAN["mixed"] += 1
        return sum(sum(group) for group in groups) * scale

    leaf, _ = _tasks()
    size = cs.Param("size", default=1)
    cache = cs.MemoryCacheBackend()

    def target():
        return mixed([[leaf(1), size], [leaf(2)]], scale=3)

    assert cs.run(target(), cache_backend=cache) == 93
    assert cs.run(target(), cache_backend=cache) == 93
    assert cs.run(target(), {"size": 2}, cache_backend=cache) == 96
    assert RAN == {"leaf": 2, "mixed": 2}
    leaf, _ = _tasks("2")  # an upstream inside the nested list changes its code
    assert cs.run(target(), cache_backend=cache) == 93
    assert RAN == {"leaf": 4, "mixed": 3}
