"""``.run_if`` and ``cs.Router``: what runs, what is skipped and recorded, what the run returns,
and the errors of bad conditions and selectors. Executions are counted with side effects."""

from __future__ import annotations

import pytest

import cascade_core as cs

CALLS: list[str] = []


@cs.task(name="db.flag")
def flag(value):
    CALLS.append(f"flag:{value!r}")
    return value


@cs.task(name="db.work")
def work(x: int) -> int:
    CALLS.append(f"work:{x}")
    return x * 10


@cs.task(name="db.cwork", cache=True)
def cwork(x: int) -> int:
    CALLS.append(f"cwork:{x}")
    return x * 10


@cs.task(name="db.after")
def after(x: int) -> int:
    CALLS.append(f"after:{x}")
    return x + 1


class Ambiguous:
    def __bool__(self):
        raise TypeError("truth value is ambiguous")


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


def test_a_false_condition_skips_the_node_and_what_needs_it():
    state = cs.MemoryStateStore()
    report = cs.Engine(state).execute([after(work(1).run_if(flag(False))), work(2).run_if(flag(True))], run_id="c1")
    assert report.status == "succeeded"
    assert report.value == [None, 20]  # a skipped target is None
    assert "work:1" not in CALLS and "after:1" not in CALLS and "work:2" in CALLS
    assert report.counts["skipped"] == 2
    reasons = sorted(report.skipped.values())
    assert reasons == ["run_if condition false: db.flag", "upstream skipped: db.work"]
    assert set(state("c1").result_ids()) and "work:1" not in CALLS


def test_a_param_condition_is_read_at_run_time():
    enabled = cs.Param("enabled", default=False, type=bool)
    target = work(3).run_if(enabled)
    assert cs.run(target) is None and CALLS == []
    assert cs.run(target, params={"enabled": True}) == 30 and CALLS == ["work:3"]


def test_a_cached_node_whose_condition_turns_false_is_skipped_not_served():
    cache = cs.MemoryCacheBackend()
    on = cs.Param("on", default=True, type=bool)
    assert cs.run(cwork(4).run_if(flag(on)), cache_backend=cache) == 40
    CALLS.clear()
    assert cs.run(cwork(4).run_if(flag(on)), cache_backend=cache, params={"on": False}) is None
    assert CALLS == ["flag:False"]


def test_a_condition_that_raises_or_is_not_a_bool_fails_with_the_task_named():
    @cs.task(name="db.broken")
    def broken():
        raise ValueError("no answer")

    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(work(5).run_if(broken()))
    assert failure.value.task == "db.broken" and "no answer" in str(failure.value)

    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(work(6).run_if(flag(Ambiguous())))
    text = str(failure.value)
    assert "run_if condition of task 'db.work' cannot be read as true or false" in text and "\n" not in text
    assert "work:6" not in CALLS


def test_run_if_refuses_what_is_not_lazy_and_a_second_condition():
    with pytest.raises(cs.DefinitionError, match="needs a lazy result or a Param, got bool"):
        work(1).run_if(True)
    with pytest.raises(cs.DefinitionError, match="is set already"):
        work(1).run_if(flag(True)).run_if(flag(False))


def test_a_router_runs_only_the_chosen_route():
    routes = {"small": work(1), "large": after(work(2))}
    report = cs.Engine().execute(cs.Router(flag("large"), routes))
    assert report.value == 21
    assert sorted(CALLS) == ["after:20", "flag:'large'", "work:2"]
    # The other route is in the run's graph, skipped: it shows in the records and pictures.
    assert list(report.skipped.values()) == ["routed away by cascade.Router"]
    assert report.counts["skipped"] == 1
    CALLS.clear()
    assert cs.run(after(cs.Router(flag("small"), routes))) == 11
    assert sorted(CALLS) == ["after:10", "flag:'small'", "work:1"]


def test_a_router_route_may_be_a_plain_value_and_the_selector_a_param():
    mode = cs.Param("mode", default="a")
    target = cs.Router(mode, {"a": work(7), "b": "plain"})
    assert cs.run(target) == 70
    CALLS.clear()
    assert cs.run(target, params={"mode": "b"}) == "plain" and CALLS == []


def test_a_route_shared_with_the_rest_of_the_graph_runs_once():
    shared = work(8)
    assert cs.run([shared, cs.Router(flag("x"), {"x": shared, "y": work(9)})]) == [80, 80]
    assert CALLS.count("work:8") == 1 and "work:9" not in CALLS


def test_changing_the_routes_changes_the_router_node():
    state = cs.MemoryStateStore()
    assert cs.run(after(cs.Router(flag("x"), {"x": work(1)})), state_backend=state, run_id="r") == 11
    CALLS.clear()
    # Same run id, another route for the same selector value: not resumed from the first.
    assert cs.run(after(cs.Router(flag("x"), {"x": work(2)})), state_backend=state, run_id="r") == 21
    assert "work:2" in CALLS


def test_a_selector_value_without_a_route_fails_with_one_line():
    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(cs.Router(flag("zip"), {"csv": work(1), "json": work(2)}))
    text = str(failure.value)
    assert "the selector's value 'zip' has no route (routes: 'csv', 'json')" in text and "\n" not in text
    assert "work:1" not in CALLS and "work:2" not in CALLS


def test_a_router_needs_a_lazy_selector_and_routes():
    with pytest.raises(cs.DefinitionError, match="selector must be a lazy result"):
        cs.Router("csv", {"csv": work(1)})
    with pytest.raises(cs.DefinitionError, match="non-empty dict of routes"):
        cs.Router(flag("a"), {})
