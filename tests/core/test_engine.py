"""The engine's semantics: values, resume, failure, async, events, scale (caching: test_engine_caching.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

import cascade_core as cs


def test_run_returns_the_target_value_shaped_like_the_target(counter):
    @cs.task
    def add(a, b):
        counter.hit("add")
        return a + b

    assert cs.run(add(add(1, 2), 3)) == 6
    assert counter["add"] == 2
    one, two = add(1, 1), add(2, 2)
    assert cs.run([one, two]) == [2, 4]
    assert cs.run((one, two)) == (2, 4)
    assert cs.run({"one": one, "nested": [two]}) == {"one": 2, "nested": [4]}


def test_lazy_results_nested_in_lists_tuples_and_dicts_are_dependencies(counter):
    @cs.task
    def number(n):
        counter.hit(f"n{n}")
        return n

    @cs.task
    def combine(items, pair, mapping):
        return sum(items) + sum(pair) + sum(mapping.values())

    result = cs.run(combine([number(1), number(2)], (number(3), 4), {"x": number(5), "y": [6][0]}))
    assert result == 1 + 2 + 3 + 4 + 5 + 6
    assert counter.total == 4


def test_after_orders_without_passing_data():
    order: list[str] = []

    @cs.task
    def step(name):
        order.append(name)
        return name

    first = step("first")
    second = step("second").after(first)
    third = step("third").after(second)
    assert cs.run(third, max_workers=4) == "third"
    assert order == ["first", "second", "third"]


def test_identical_calls_are_two_nodes_and_both_run(counter):
    @cs.task
    def side_effect(x):
        counter.hit("side")
        return x

    @cs.task
    def pair(a, b):
        return (a, b)

    assert cs.run(pair(side_effect(1), side_effect(1))) == (1, 1)
    assert counter["side"] == 2


def test_param_defaults_values_and_conversion():
    n = cs.Param("n", default=2, type=int)

    @cs.task
    def double(x):
        return 2 * x

    assert cs.run(double(n)) == 4
    assert cs.run(double(n), params={"n": 5}) == 10
    assert cs.run(double(n), params={"n": "7"}) == 14  # strings (from the CLI) convert


def test_node_ids_are_stable_across_processes(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "ids.py"
    script.write_text(
        "import cascade_core as cs\n"
        "from cascade_core._build.graph import build_graph\n"
        "@cs.task(name='inc')\n"
        "def inc(x): return x + 1\n"
        "@cs.task(name='total')\n"
        "def total(xs, opts): return sum(xs)\n"
        "g = build_graph(total([inc(i) for i in range(3)], {'b': {1, 2}, 'a': 1.5}))\n"
        "print(' '.join(n.id for n in g.nodes))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    ids = outputs.pop().split()
    assert len(ids) == 4 and len(set(ids)) == 4


def test_resume_skips_nodes_whose_result_is_stored(counter, tmp_path):
    marker = tmp_path / "fail"
    marker.write_text("1")

    @cs.task
    def load(x):
        counter.hit("load")
        return x * 10

    @cs.task
    def flaky(value):
        counter.hit("flaky")
        if marker.exists():
            raise RuntimeError("boom")
        return value + 1

    skipped: list[tuple[str, str]] = []

    class Watcher:
        @cs.hookimpl
        def cascade_task_skipped(self, run_id, task, node_id, reason):
            skipped.append((task.rsplit(".", 1)[-1], reason))

    target = flaky(load(4))
    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(target, run_id="r1")
    assert failure.value.run_id == "r1"
    assert "r1" in str(failure.value)
    assert "flaky" in failure.value.task
    assert isinstance(failure.value.__cause__, RuntimeError)
    assert (counter["load"], counter["flaky"]) == (1, 1)

    marker.unlink()
    assert cs.run(target, run_id="r1", observers=[Watcher()]) == 41
    assert (counter["load"], counter["flaky"]) == (1, 2)  # load was not executed again
    assert ("load", "resumed") in skipped

    # A fresh run id starts over.
    assert cs.run(target, run_id="r2") == 41
    assert counter["load"] == 2


def test_without_run_id_a_fresh_id_is_logged_and_carried_by_task_failed(caplog):
    @cs.task
    def broken():
        raise ValueError("bad input")

    caplog.set_level(logging.INFO, logger="cascade")
    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(broken())
    run_id = failure.value.run_id
    assert run_id and run_id in str(failure.value)
    assert any(run_id in record.getMessage() and "started" in record.getMessage() for record in caplog.records)
    assert "ValueError: bad input" in str(failure.value)
    assert "\n" not in str(failure.value)


def test_async_tasks_run_concurrently_on_the_event_loop():
    @cs.task
    async def wait(i):
        await asyncio.sleep(0.1)
        return i

    @cs.task
    def gather(*xs):
        return list(xs)

    started = time.perf_counter()
    assert cs.run(gather(*[wait(i) for i in range(8)]), max_workers=8) == list(range(8))
    assert time.perf_counter() - started < 0.5  # 8 x 0.1 s sequentially would be 0.8 s


def test_arun_runs_async_tasks_on_the_callers_loop():
    loops: list[object] = []

    @cs.task
    async def where():
        loops.append(asyncio.get_running_loop())
        return 1

    @cs.task
    def plus(x):
        return x + 1

    async def main():
        value = await cs.arun(plus(where()))
        return value, asyncio.get_running_loop()

    value, loop = asyncio.run(main())
    assert value == 2 and loops == [loop]


def test_events_reach_pluggy_observers():
    seen: list[tuple] = []

    class Recorder:
        @cs.hookimpl
        def cascade_run_started(self, run_id, tasks):
            seen.append(("run_started", tasks))

        @cs.hookimpl
        def cascade_task_finished(self, task, cached):
            seen.append(("finished", task.rsplit(".", 1)[-1], cached))

        @cs.hookimpl
        def cascade_task_retrying(self, attempt):
            seen.append(("retrying", attempt))

        @cs.hookimpl
        def cascade_run_finished(self, status, counts, duration):
            assert duration > 0
            seen.append(("run_finished", status, counts["executed"]))

    state = {"tries": 0}

    @cs.task(retries=1)
    def wobbly():
        state["tries"] += 1
        if state["tries"] == 1:
            raise OSError("first try fails")
        return 1

    cs.run(wobbly(), observers=[Recorder()])
    assert seen == [
        ("run_started", 1),
        ("retrying", 1),
        ("finished", "wobbly", False),
        ("run_finished", "succeeded", 1),
    ]


def test_an_observer_with_an_unknown_hook_is_refused():
    class Typo:
        @cs.hookimpl
        def cascade_task_finishd(self):
            pass

    @cs.task
    def one():
        return 1

    with pytest.raises(Exception, match="cascade_task_finishd"):
        cs.run(one(), observers=[Typo()])


def test_long_chain_and_wide_fan_out_do_not_recurse():
    @cs.task
    def inc(x):
        return x + 1

    @cs.task
    def total(xs):
        return sum(xs)

    node = inc(0)
    for _ in range(49_999):
        node = inc(node)
    assert cs.run(node, max_workers=1) == 50_000
    assert cs.run(total([inc(i) for i in range(100_000)]), max_workers=1) == sum(range(1, 100_001))


def test_unpicklable_result_fails_its_task_with_a_clear_error_and_keeps_other_state(counter):
    @cs.task
    def fine():
        counter.hit("fine")
        return 1

    @cs.task
    def unpicklable(_):
        return threading.Lock()

    store = cs.MemoryStateStore()
    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(unpicklable(fine()), state_backend=store, run_id="u")
    assert isinstance(failure.value.cause, cs.SerializationError)
    assert "unpicklable" in str(failure.value) and "cannot be stored" in str(failure.value)
    assert len(store("u").result_ids()) == 1


def test_the_default_memory_store_keeps_a_bounded_number_of_runs():
    @cs.task
    def one():
        return 1

    for i in range(5):
        cs.run(one(), state_backend="memory://bounded?max_runs=3", run_id=f"r{i}")
    from cascade_core.backends.memory import named_state_store

    assert [run["run_id"] for run in named_state_store("bounded", 3).list_runs()] == ["r2", "r3", "r4"]
