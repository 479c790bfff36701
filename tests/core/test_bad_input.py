"""Each mistake a user can make gets a CascadeError subclass with a one-line message that says what to do."""

from __future__ import annotations

import collections

import pytest

import cascade_core as cs


@cs.task
def add(a, b):
    return a + b


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_task_needs_a_callable():
    for bad in (5, "name", None):
        with pytest.raises(cs.DefinitionError) as error:
            cs.task(bad) if bad is not None else cs.Task(bad)  # type: ignore[arg-type]
        assert "function" in _one_line(error.value)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retry_delay": -2}, "retry_delay"),
        ({"cache_ttl": 0}, "cache_ttl"),
        ({"cache": "yes"}, "cache="),
        ({"version": 3}, "version"),
        ({"retires": 2}, "unknown @task option"),
        ({"name": "a:b"}, "task name"),
    ],
)
def test_task_options_are_validated(options, words):
    with pytest.raises(cs.DefinitionError) as error:
        cs.task(**options)(lambda: None)
    assert words in _one_line(error.value)


def test_unknown_missing_and_mistyped_params():
    n = cs.Param("n", type=int)
    with pytest.raises(cs.ParamError) as error:
        cs.run(add(n, 1))
    assert error.value.param == "n" and "missing param 'n'" in _one_line(error.value)
    with pytest.raises(cs.ParamError) as error:
        cs.run(add(n, 1), params={"n": 1, "m": 2})
    assert "unknown param 'm'" in _one_line(error.value) and "n" in str(error.value)
    with pytest.raises(cs.ParamError) as error:
        cs.run(add(n, 1), params={"n": "seven"})
    assert "'n' expects int" in _one_line(error.value)
    with pytest.raises(cs.ParamError):
        cs.run(add(n, 1), params={"n": [1]})
    with pytest.raises(cs.ParamError):
        cs.run(add(n, 1), params=[("n", 1)])  # type: ignore[arg-type]
    with pytest.raises(cs.DefinitionError):
        cs.Param("not valid")


def test_a_param_name_declared_twice_differently_is_refused():
    with pytest.raises(cs.ParamError, match="declared twice"):
        cs.run(add(cs.Param("x", default=1), cs.Param("x", default=2)))


def test_targets_that_are_not_lazy_results():
    with pytest.raises(cs.TargetError) as error:
        cs.run(add)
    assert "add(...)" in _one_line(error.value)
    for bad in (5, [1, 2], {"a": "b"}, None):
        with pytest.raises(cs.TargetError):
            cs.run(bad)


def test_cycles_made_with_after_name_the_loop():
    a = add(1, 2)
    b = add(a, 3)
    a.after(b)
    with pytest.raises(cs.CycleError) as error:
        cs.run(b)
    assert "cycle" in _one_line(error.value) and ".after()" in str(error.value)
    with pytest.raises(cs.DefinitionError):
        add(1, 2).after("not a task")  # type: ignore[arg-type]


def test_objects_that_are_not_backends():
    with pytest.raises(cs.DefinitionError) as error:
        cs.run(add(1, 2), state_backend=42)
    assert "state_backend" in _one_line(error.value)
    with pytest.raises(cs.DefinitionError) as error:
        cs.run(add(1, 2), cache_backend=object())
    assert "cache_backend" in _one_line(error.value)
    with pytest.raises(cs.DefinitionError):
        cs.run(add(1, 2), max_workers=0)
    with pytest.raises(cs.DefinitionError):
        cs.run(add(1, 2), run_id="has space")


def test_branching_on_a_lazy_result_is_explained():
    with pytest.raises(cs.DefinitionError, match="branch inside a task"):
        bool(add(1, 2))


def test_a_state_instance_bound_to_another_run_id_is_refused():
    backend = cs.MemoryStateBackend("bound")
    assert cs.run(add(1, 2), state_backend=backend) == 3
    with pytest.raises(cs.DefinitionError, match="differs"):
        cs.run(add(1, 2), state_backend=backend, run_id="other")


def test_nothing_stored_is_lost_by_a_bad_call():
    store = cs.MemoryStateStore()
    cs.run(add(1, 2), state_backend=store, run_id="keep")
    before = store("keep").get_results(store("keep").result_ids())
    with pytest.raises(cs.ParamError):
        cs.run(add(cs.Param("p"), 2), state_backend=store, run_id="keep")
    with pytest.raises(cs.CascadeError):
        cs.run(add(1, 2), state_backend=store, cache_backend=object(), run_id="keep")
    assert store("keep").get_results(store("keep").result_ids()) == before


def test_a_task_returning_lazy_results_under_json_fails_with_an_explanation(json_state):
    @cs.task(name="builder")
    def builder():
        return add(1, 2)

    _, factory = json_state
    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(builder(), state_backend=factory)
    assert isinstance(failure.value.cause, cs.SerializationError)
    assert "returned lazy results" in _one_line(failure.value)
    assert "pickle serializer" in _one_line(failure.value)


def test_calls_are_matched_against_the_signature():
    from cascade_core._build.graph import build_graph

    @cs.task(name="defaults")
    def with_default(a, b=2):
        return a + b

    graph = build_graph([with_default(1), with_default(a=1), with_default(1, b=2)])
    assert {node.lazy.args for node in graph.nodes} == {(1, 2)}
    with pytest.raises(cs.DefinitionError) as error:
        with_default(1, 2, 3)
    assert "wrong arguments" in _one_line(error.value)
    with pytest.raises(cs.DefinitionError):
        with_default(c=1)


def test_a_changed_default_is_a_new_node():
    from cascade_core._build.graph import build_graph

    def make(default):
        @cs.task(name="changing")
        def changing(a, b=default):
            return a + b

        return changing

    first = build_graph(make(2)(1)).nodes[0].id
    assert build_graph(make(2)(1)).nodes[0].id == first
    assert build_graph(make(100)(1)).nodes[0].id != first


Pair = collections.namedtuple("Pair", "left right")


def test_lazy_results_inside_container_subclasses_are_refused():
    from collections import OrderedDict

    pair = Pair

    @cs.task
    def ident(x):
        return x

    with pytest.raises(cs.DefinitionError) as error:
        ident(pair(add(1, 2), 3))
    assert "Pair holding lazy results" in _one_line(error.value)
    with pytest.raises(cs.DefinitionError):
        ident(OrderedDict(a=add(1, 2)))
    assert cs.run(ident(pair(1, 2))) == (1, 2)  # no lazy results inside: fine


def test_a_param_used_as_a_dict_key():
    key = cs.Param("key", default="k")

    @cs.task
    def ident(x):
        return x

    assert cs.run(ident({key: 1})) == {"k": 1}
    assert cs.run(ident({key: 1}), params={"key": "other"}) == {"other": 1}
