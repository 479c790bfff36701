"""``task.map``: over plain iterables (expanded while the graph is built) and over lazy results
(expanded when the run knows the list); zipped and unmapped arguments; ids per element;
caching per element; resume; bad input. Executions are counted with side effects."""

from __future__ import annotations

import pytest

import cascade_core as cs
from cascade_core._build.graph import build_graph

CALLS: list[tuple] = []


@cs.task(name="dm.listing")
def listing(n: int) -> list[int]:
    CALLS.append(("listing", n))
    return list(range(n))


@cs.task(name="dm.values")
def values(items: list) -> list:
    CALLS.append(("values",))
    return list(items)


@cs.task(name="dm.ident")
def ident(value):
    return value


@cs.task(name="dm.square")
def square(x: int) -> int:
    CALLS.append(("square", x))
    return x * x


@cs.task(name="dm.csquare", cache=True)
def csquare(x: int) -> int:
    CALLS.append(("csquare", x))
    return x * x


@cs.task(name="dm.add")
def add(a: int, b: int = 0) -> int:
    CALLS.append(("add", a, b))
    return a + b


@cs.task(name="dm.total")
def total(xs: list) -> int:
    CALLS.append(("total", len(xs)))
    return sum(xs)


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


def executed(name: str) -> list[tuple]:
    return [call for call in CALLS if call[0] == name]


def test_a_map_over_a_lazy_list_runs_one_call_per_element_in_order():
    state = cs.MemoryStateStore()
    report = cs.Engine(state).execute(total(square.map(listing(5))), run_id="m")
    assert report.value == 0 + 1 + 4 + 9 + 16
    assert sorted(executed("square")) == [("square", x) for x in range(5)]
    assert executed("listing") == [("listing", 5)] and executed("total") == [("total", 5)]
    assert cs.run(square.map(listing(4))) == [0, 1, 4, 9]
    # The total grew with the expansion: listing, the map node, five calls, total.
    assert report.counts["total"] == 8 and report.counts["executed"] == 8
    assert state("m").get_run_info()["tasks"] == "8"  # run info counts the nodes the run added
    CALLS.clear()
    assert cs.run(total(square.map(listing(3))), executor="inline://") == 5  # every executor: inline here
    assert sorted(executed("square")) == [("square", x) for x in range(3)]


def test_a_map_over_a_plain_list_expands_while_the_graph_is_built():
    graph = build_graph(square.map([1, 2, 3]))
    assert sorted(node.task.name for node in graph.nodes) == ["cascade.collect", *["dm.square"] * 3]
    assert cs.run(total(square.map(x for x in [1, 2, 3]))) == 14  # a generator is read once, when mapped
    assert sorted(executed("square")) == [("square", 1), ("square", 2), ("square", 3)]


def test_zipped_keyword_and_unmapped_arguments():
    assert cs.run(add.map(listing(3), values([10, 20, 30]))) == [10, 21, 32]
    assert cs.run(add.map(listing(3), b=cs.unmapped(square(4)))) == [16, 17, 18]
    assert cs.run(add.map([1, 2], cs.unmapped(100))) == [101, 102]
    assert cs.run(add.map(a=listing(2), b=listing(2))) == [0, 2]
    # One square(4) for all three calls: an unmapped lazy result is one upstream, not a copy per call.
    assert executed("square") == [("square", 4)]


def test_maps_compose_and_an_empty_list_gives_an_empty_list():
    assert cs.run(square.map(square.map(listing(3)))) == [0, 1, 16]
    assert cs.run(square.map(square.map([1, 2]))) == [1, 16]  # static all the way down
    CALLS.clear()
    assert cs.run(total(square.map(listing(0)))) == 0
    assert executed("square") == [] and executed("total") == [("total", 0)]
    assert cs.run(square.map([])) == []


def test_equal_elements_are_distinct_calls_with_distinct_ids():
    state = cs.MemoryStateStore()
    assert cs.run(square.map(values([5, 5, 5])), state_backend=state, run_id="eq") == [25, 25, 25]
    assert executed("square") == [("square", 5)] * 3
    stored = state("eq").result_ids()
    square_ids = {i for i in stored if not i.endswith(".graph")} - {
        node.id for node in build_graph(square.map(values([5, 5, 5]))).nodes
    }
    assert len(square_ids) == 3


def test_a_grown_list_runs_only_the_new_element_when_calls_are_cached():
    cache = cs.MemoryCacheBackend()
    assert cs.run(total(csquare.map(values([1, 2, 3]))), cache_backend=cache) == 14
    assert sorted(executed("csquare")) == [("csquare", 1), ("csquare", 2), ("csquare", 3)]
    CALLS.clear()
    assert cs.run(total(csquare.map(values([1, 2, 3, 4]))), cache_backend=cache) == 30
    assert executed("csquare") == [("csquare", 4)]
    CALLS.clear()
    assert cs.run(total(csquare.map(values([4, 3, 2, 1]))), cache_backend=cache) == 30  # order: no rerun
    assert executed("csquare") == []


def test_a_resumed_run_reruns_only_the_calls_that_did_not_finish():
    state = cs.MemoryStateStore()
    fail_at = {7}

    @cs.task(name="dm.flaky")
    def flaky(x: int) -> int:
        CALLS.append(("flaky", x))
        if x in fail_at:
            raise RuntimeError("boom")
        return x

    with pytest.raises(cs.TaskFailed):
        cs.run(flaky.map(listing(10)), state_backend=state, run_id="res", max_workers=1)
    first = {call[1] for call in executed("flaky")}
    assert 7 in first
    CALLS.clear()
    fail_at.clear()
    assert cs.run(flaky.map(listing(10)), state_backend=state, run_id="res") == list(range(10))
    again = {call[1] for call in executed("flaky")}
    assert 7 in again and not (again & (first - {7}))  # the calls that finished are not run again
    assert executed("listing") == []  # resumed


def test_warm_reruns_read_as_often_for_ten_elements_as_for_a_thousand():
    class Counting(cs.MemoryCacheBackend):
        def __init__(self) -> None:
            super().__init__()
            self.trips = 0

        def get_many(self, keys):
            self.trips += 1
            return super().get_many(keys)

    trips = {}
    for n in (10, 1000):
        cache = Counting()

        @cs.task(name=f"dm.clist{n}", cache=True)
        def clist(n: int = n) -> list[int]:
            return list(range(n))

        @cs.task(name=f"dm.ctotal{n}", cache=True)
        def ctotal(xs: list) -> int:
            return sum(xs)

        assert cs.run(ctotal(csquare.map(clist())), cache_backend=cache) == sum(x * x for x in range(n))
        cache.trips = 0
        CALLS.clear()
        report = cs.Engine(cache_backend=cache).execute(ctotal(csquare.map(clist())))
        assert executed("csquare") == [] and report.counts["executed"] == 0
        trips[n] = cache.trips
        static = Counting()
        cs.run(ctotal([csquare(x) for x in range(n)]), cache_backend=static)
        static.trips = 0
        cs.run(ctotal([csquare(x) for x in range(n)]), cache_backend=static)
        trips[f"static {n}"] = static.trips
    assert trips[10] == trips[1000] == trips["static 1000"] <= 2, trips


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: square.map(listing(3), listing(4)), "dm.square.map() got iterables of different lengths (3, 4)"),
        (lambda: square.map(square(3)), "is a int, which cannot be iterated"),
        (lambda: square.map(ident({"a": 1})), "is a dict: map over list(d.items())"),
        (lambda: square.map(ident("abc")), "is a str: map over a list of them"),
    ],
)
def test_bad_input_found_at_run_time_fails_the_map_with_one_line(make, message):
    state = cs.MemoryStateStore()
    with pytest.raises(cs.TaskFailed) as failure:
        cs.run(make(), state_backend=state, run_id="bad")
    text = str(failure.value)
    assert message in text and "\n" not in text and "dm.square.map" in text
    assert isinstance(failure.value.cause, cs.DefinitionError)
    assert state("bad").result_ids()  # the upstreams that ran are stored still


def test_bad_input_found_while_building_is_a_definition_error():
    with pytest.raises(cs.DefinitionError, match=r"different lengths \(2, 3\)"):
        square.map([1, 2], [1, 2, 3])
    with pytest.raises(cs.DefinitionError, match="is a dict"):
        square.map({"a": 1})
    with pytest.raises(cs.DefinitionError, match="cannot be iterated"):
        square.map(3)
    with pytest.raises(cs.DefinitionError, match="every argument is unmapped"):
        square.map(cs.unmapped([1]))
    with pytest.raises(cs.DefinitionError, match="at least one iterable"):
        square.map()


def test_a_map_with_a_blob_store_stores_references_for_large_calls(tmp_path):
    @cs.task(name="dm.big")
    def big(x: int) -> bytes:
        return bytes([x]) * 4096

    state = cs.MemoryStateStore()
    blobs = f"file://{tmp_path}/blobs?threshold=1024"
    result = cs.run(big.map(listing(3)), state_backend=state, run_id="b", blob_store=blobs)
    assert result == [bytes([x]) * 4096 for x in range(3)]
    payloads = state("b").get_results(state("b").result_ids())
    references = [p for p in payloads.values() if b"cascade-blob" in p[:64] or len(p) < 1024]
    assert len(references) == len(payloads)  # every stored result is small: the calls' bytes are blobs
    assert len(list((tmp_path / "blobs").rglob("*"))) >= 3


def test_the_list_then_process_each_example(tmp_path, monkeypatch):
    """examples/process_each.py: a new file is the only one read on the next run."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "process_each", Path(__file__).parents[2] / "examples" / "process_each.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    for name, lines in (("a.txt", 3), ("b.txt", 5)):
        (tmp_path / name).write_text("x\n" * lines)
    engine = cs.Engine(None, cs.MemoryCacheBackend())
    params = {"folder": str(tmp_path), "pattern": "*.txt"}
    first = engine.execute(example.pipeline(), params)
    assert first.value.splitlines() == [f"       3  {tmp_path}/a.txt", f"       5  {tmp_path}/b.txt"]
    (tmp_path / "c.txt").write_text("x\n")
    second = engine.execute(example.pipeline(), params)
    assert second.value.splitlines()[-1] == f"       1  {tmp_path}/c.txt"
    by_task = second.counts
    assert by_task["cached"] == 2  # a.txt and b.txt: only c.txt was read
    assert engine.execute(example.pipeline(), {"folder": str(tmp_path / "none"), "pattern": "*"}).value is None
