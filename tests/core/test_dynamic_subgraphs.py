"""Tasks that return lazy results: the run adds that graph and the task's value is the graph's;
the graph is stored with the task, so a resume does not run the task that built it; a killed
run of 1,000 mapped calls resumes with only the unfinished ones; bad subgraphs fail with one
line. Executions are counted with side effects (in-process lists, or a log file across processes)."""

from __future__ import annotations

import signal

import pytest

import cascade_core as cs

CALLS: list[str] = []


@cs.task(name="ds.add")
def add(a: int, b: int) -> int:
    CALLS.append(f"add:{a}+{b}")
    return a + b


@cs.task(name="ds.fib")
def fib(n: int):
    CALLS.append(f"fib:{n}")
    return n if n < 2 else add(fib(n - 1), fib(n - 2))


FAILING: set[bool] = set()


@cs.task(name="ds.fragile")
def fragile(x: int) -> int:
    CALLS.append(f"fragile:{x}")
    if FAILING:
        raise RuntimeError("not yet")
    return x


@cs.task(name="ds.builder")
def builder(n: int):
    CALLS.append("builder")
    return add(fragile(n), 1)


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


def test_recursion_through_returned_graphs():
    assert cs.run(fib(10)) == 55
    assert CALLS.count("fib:10") == 1


def test_a_returned_list_or_dict_of_lazy_results_becomes_their_values():
    @cs.task(name="ds.fan")
    def fan(n: int):
        return {"sum": add(n, n), "plain": n, "items": [1, 2]}

    @cs.task(name="ds.lst")
    def lst(n: int):
        return [add(i, 1) for i in range(n)] + ["end"]

    assert cs.run(fan(3)) == {"sum": 6, "plain": 3, "items": [1, 2]}
    assert cs.run(lst(3)) == [1, 2, 3, "end"]


def test_a_returned_graph_is_stored_so_a_resume_does_not_rebuild_it():
    state = cs.MemoryStateStore()
    FAILING.add(True)
    with pytest.raises(cs.TaskFailed):
        cs.run(builder(4), state_backend=state, run_id="sg")
    assert CALLS == ["builder", "fragile:4"]
    CALLS.clear()
    FAILING.clear()
    assert cs.run(builder(4), state_backend=state, run_id="sg") == 5
    assert CALLS == ["fragile:4", "add:4+1"]  # the builder is not run again


def test_a_subgraph_with_a_param_the_run_lacks_fails_with_one_line():
    @cs.task(name="ds.needs_param")
    def needs_param():
        return add(cs.Param("missing_one"), 1)

    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(needs_param())
    text = str(failure.value)
    assert "ds.needs_param" in text and "param 'missing_one'" in text and "\n" not in text


def test_a_subgraph_cycle_fails_with_one_line():
    @cs.task(name="ds.cyclic")
    def cyclic():
        first = add(1, 2)
        second = add(first, 3)
        first.after(second)
        return second

    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(cyclic())
    text = str(failure.value)
    assert "ds.cyclic" in text and "the graph has a cycle" in text and "\n" not in text


MAPPED = """
import os, time
import cascade_core as cs


def note(event):
    with open(os.environ["LOG"], "a") as log:
        log.write(f"{event} {os.getpid()}\\n")


@cs.task
def listing(n):
    note("start listing")
    return list(range(n))


@cs.task
def call(i):
    note(f"start call-{i}")
    if i == int(os.environ.get("HANG_AT", "-1")):
        time.sleep(120)
    note(f"end call-{i}")
    return i


@cs.task
def builder():
    note("start builder")
    return call.map(listing(1000))


@cs.task
def total(xs):
    note("start total")
    return sum(xs)


target = total(builder())
"""


def test_a_killed_run_of_a_thousand_mapped_calls_resumes_with_the_unfinished_ones(tmp_path, crashes):
    cascade, events, wait_for = crashes.cascade, crashes.events, crashes.wait_for
    (tmp_path / "flow.py").write_text(MAPPED)
    log = tmp_path / "events.log"
    args = ["run", "flow.py:target", "--state", f"sqlite:///{tmp_path}/s.db", "--run-id", "m1", "--no-progress"]
    first = cascade(tmp_path, *args, LOG=str(log), HANG_AT="600")
    try:
        wait_for(log, "start call-600", timeout=120)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    before = events(log)
    stored = _stored_calls(tmp_path / "s.db", "m1")
    assert len(stored) >= 100  # the first driver stored many calls before it was killed
    second = cascade(tmp_path, *args, LOG=str(log))
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    after = events(log)
    assert after["start builder"] == 1 and after["start listing"] == 1  # resumed, graph and list
    reran = {int(e.split("-")[1]) for e in after if e.startswith("start call-") and after[e] > before[e]}
    assert reran == set(range(1000)) - stored  # exactly the calls whose results were not stored
    assert all(after[f"end call-{i}"] >= 1 for i in range(1000))
    assert after["start total"] == 1


def _stored_calls(path, run_id: str) -> set[int]:
    """The mapped calls whose results the state holds (their values are their numbers)."""
    from cascade_core._store.codec import Codec, state_key
    from cascade_core.backends.sqlite import SqliteStateStore

    backend = SqliteStateStore(path)(run_id)
    payloads = backend.get_results([i for i in backend.result_ids() if not i.endswith(".graph")])
    values = [Codec("pickle").loads(state_key(run_id, node_id), payload) for node_id, payload in payloads.items()]
    return {value for value in values if type(value) is int}
