"""The StateBackend contract (and the optional RunCatalog), for the backend of ``--cascade-uri``."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from cascade_core.testing.plugin import (
    check_declared_attributes,
    close_quietly,
    new_run_id,
    open_state_factory,
    run_concurrently,
)

PAYLOADS = {
    "empty": b"",
    "nul": b"\x00",
    "binary": bytes(range(256)) * 4,
    "not-utf8": b"\xff\xfe\x80 caf\xc3",
    "text-like": b"hello",
}
# Node ids, run ids, cache keys and lease names are arbitrary strings: a backend that maps them
# to file names, URLs or key patterns must encode them (and keep names apart that differ in case).
ODD_IDS = [
    "with space",
    "slash/and:colon",
    "../up",
    "unicode-\u00e9\u4e2d",
    "percent%_underscore*?[]{}",
    "x" * 300,
    "'quote\"",
    "Case",
    "case",
    "",
]


def test_round_trip_varied_payloads(cascade_state_backend):
    cascade_state_backend.put_results(PAYLOADS)
    got = cascade_state_backend.get_results(list(PAYLOADS))
    assert got == PAYLOADS
    assert all(type(value) is bytes for value in got.values())


def test_odd_node_ids(cascade_state_backend):
    results = {node_id: node_id.encode() + b"!" for node_id in ODD_IDS}
    cascade_state_backend.put_results(results)
    assert cascade_state_backend.get_results(ODD_IDS) == results
    assert cascade_state_backend.result_ids() == set(ODD_IDS)


def test_large_payload(cascade_state_backend):
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB
    cascade_state_backend.put_results({"big": big})
    assert cascade_state_backend.get_results(["big"])["big"] == big


def test_missing_results_are_left_out(cascade_state_backend):
    assert cascade_state_backend.get_results(["nope"]) == {}
    cascade_state_backend.put_results({"a": b"1"})
    assert cascade_state_backend.get_results(["nope", "a", "other"]) == {"a": b"1"}
    assert cascade_state_backend.get_results([]) == {}


def test_get_results_accepts_any_iterable(cascade_state_backend):
    cascade_state_backend.put_results({"a": b"1", "b": b"2"})
    assert cascade_state_backend.get_results(node_id for node_id in ["a", "b", "c"]) == {"a": b"1", "b": b"2"}
    assert cascade_state_backend.get_results(["a", "a"]) == {"a": b"1"}


def test_many_results_in_one_batch(cascade_state_backend):
    results = {f"node-{i}": f"value-{i}".encode() for i in range(3000)}
    cascade_state_backend.put_results(results)
    assert cascade_state_backend.get_results(list(results)) == results
    assert cascade_state_backend.result_ids() == set(results)


def test_overwrite(cascade_state_backend):
    cascade_state_backend.put_results({"a": b"old", "b": b"kept"})
    cascade_state_backend.put_results({"a": b"new"})
    assert cascade_state_backend.get_results(["a", "b"]) == {"a": b"new", "b": b"kept"}


def test_empty_batches_change_nothing(cascade_state_backend):
    cascade_state_backend.put_results({})
    cascade_state_backend.mark_skipped({})
    assert cascade_state_backend.result_ids() == set()
    assert cascade_state_backend.get_skip_reasons() == {}


def test_result_ids(cascade_state_backend):
    assert cascade_state_backend.result_ids() == set()
    cascade_state_backend.put_results({"a": b"1"})
    cascade_state_backend.put_results({"b": b"2", "a": b"3"})
    ids = cascade_state_backend.result_ids()
    assert ids == {"a", "b"}
    assert isinstance(ids, set)


def test_skip_reasons(cascade_state_backend):
    assert cascade_state_backend.get_skip_reasons() == {}
    cascade_state_backend.mark_skipped({"a": "upstream 'x' failed", "b": "cancelled"})
    cascade_state_backend.mark_skipped({"b": "upstream 'y' failed", "c": "r\u00e9sum\u00e9"})
    assert cascade_state_backend.get_skip_reasons() == {
        "a": "upstream 'x' failed",
        "b": "upstream 'y' failed",
        "c": "r\u00e9sum\u00e9",
    }
    assert cascade_state_backend.result_ids() == set()  # skipping is not a result


def test_run_info_merges(cascade_state_backend):
    assert _caller_keys(cascade_state_backend.get_run_info()) == {}
    cascade_state_backend.set_run_info({"status": "running", "target": "pkg.flow"})
    cascade_state_backend.set_run_info({"status": "done"})
    assert _caller_keys(cascade_state_backend.get_run_info()) == {"status": "done", "target": "pkg.flow"}


def test_unknown_run_has_no_info(cascade_state_factory):
    with_info = cascade_state_factory(new_run_id())
    with_info.set_run_info({"status": "done"})
    unknown = cascade_state_factory(new_run_id())
    try:
        assert unknown.get_run_info() == {}
        assert unknown.get_results(["a"]) == {}
        assert unknown.get_skip_reasons() == {}
    finally:
        with_info.close()
        unknown.close()


def test_run_ids_are_isolated(cascade_state_factory):
    first, second = cascade_state_factory(new_run_id()), cascade_state_factory(new_run_id())
    try:
        first.put_results({"shared-id": b"first", "only-first": b"1"})
        first.mark_skipped({"s": "first"})
        first.set_run_info({"status": "first"})
        second.put_results({"shared-id": b"second"})
        assert first.get_results(["shared-id", "only-first"]) == {"shared-id": b"first", "only-first": b"1"}
        assert second.get_results(["shared-id", "only-first"]) == {"shared-id": b"second"}
        assert second.result_ids() == {"shared-id"}
        assert second.get_skip_reasons() == {}
        assert "status" not in second.get_run_info()
    finally:
        first.close()
        second.close()


def test_two_backends_for_one_run_share_it(cascade_state_factory):
    run_id = new_run_id()
    writer, reader = cascade_state_factory(run_id), cascade_state_factory(run_id)
    try:
        writer.put_results({"a": b"1"})
        writer.mark_skipped({"b": "why"})
        assert reader.get_results(["a"]) == {"a": b"1"}
        assert reader.get_skip_reasons() == {"b": "why"}
        assert reader.run_id == run_id
    finally:
        writer.close()
        reader.close()


def test_odd_run_ids(cascade_state_factory):
    base = new_run_id()
    suffixes = ["", "/slash/../dots", ":" + "r" * 300, " spaced \u00e9\u4e2d", "%_*?{}", "-Case", "-case"]
    run_ids = [base + suffix for suffix in suffixes]
    backends = [cascade_state_factory(run_id) for run_id in run_ids]
    try:
        for backend in backends:
            backend.put_results({"n": backend.run_id.encode()})
            backend.mark_skipped({"s": backend.run_id})
            backend.set_run_info({"status": backend.run_id})
        for backend in backends:
            again = cascade_state_factory(backend.run_id)
            assert again.get_results(["n"]) == {"n": backend.run_id.encode()}
            assert again.result_ids() == {"n"}
            assert again.get_skip_reasons() == {"s": backend.run_id}
            assert again.get_run_info()["status"] == backend.run_id
            again.close()
        if _has(cascade_state_factory, _run_catalog()):
            listed = {run["run_id"]: run["status"] for run in cascade_state_factory.list_runs()}
            assert {run_id: listed.get(run_id) for run_id in run_ids} == {run_id: run_id for run_id in run_ids}
            assert cascade_state_factory.delete_run(run_ids[1]) is True
            assert backends[0].get_results(["n"]) == {"n": run_ids[0].encode()}
    finally:
        for backend in backends:
            backend.close()


def test_persists_across_factories(cascade_uri, cascade_state_backend):
    cascade_state_backend.put_results({"a": b"kept"})
    cascade_state_backend.set_run_info({"status": "done"})
    factory = open_state_factory(cascade_uri)
    try:
        again = factory(cascade_state_backend.run_id)
        assert again.get_results(["a"]) == {"a": b"kept"}
        assert again.get_run_info()["status"] == "done"
        again.close()
    finally:
        close_quietly(factory)


def test_close_twice_is_harmless(cascade_state_factory):
    backend = cascade_state_factory(new_run_id())
    backend.put_results({"a": b"1"})
    backend.close()
    backend.close()
    reopened = cascade_state_factory(backend.run_id)
    assert reopened.get_results(["a"]) == {"a": b"1"}
    reopened.close()


def test_concurrent_writers_lose_nothing(cascade_state_factory):
    run_id = new_run_id()
    shared = cascade_state_factory(run_id)

    def work(worker: int) -> None:
        own = cascade_state_factory(run_id)
        try:
            for i in range(20):
                backend = shared if i % 2 else own
                backend.put_results({f"w{worker}-{i}": f"{worker}:{i}".encode()})
                backend.set_run_info({f"worker-{worker}": str(i)})
        finally:
            own.close()

    errors = run_concurrently(work, list(range(8)))
    try:
        assert not errors, errors
        expected = {f"w{worker}-{i}" for worker in range(8) for i in range(20)}
        assert shared.result_ids() == expected
        assert shared.get_results(["w3-7"]) == {"w3-7": b"3:7"}
        info = shared.get_run_info()
        assert all(info[f"worker-{worker}"] == "19" for worker in range(8))
    finally:
        shared.close()


# -- optional: created/updated timestamps ---------------------------------------


def test_timestamps(cascade_state_backend):
    cascade_state_backend.set_run_info({"status": "running"})
    info = cascade_state_backend.get_run_info()
    if "created" not in info:
        pytest.skip("optional capability: this backend records no created/updated timestamps")
    created = _utc(info["created"])
    assert abs(datetime.now(created.tzinfo) - created) < timedelta(minutes=5)
    time.sleep(0.01)
    cascade_state_backend.put_results({"a": b"1"})
    later = cascade_state_backend.get_run_info()
    assert later["created"] == info["created"]
    assert _utc(later["updated"]) > _utc(info["updated"])
    assert later["status"] == "running"


# -- optional: RunCatalog on the factory ------------------------------------------


def _has(obj, capability: type) -> bool:
    return isinstance(obj, capability)


def _run_catalog() -> type:
    from cascade_core.plugin import RunCatalog

    return RunCatalog


def _catalog(factory):
    if not isinstance(factory, _run_catalog()):
        pytest.skip("optional capability: the state factory has no RunCatalog (list_runs, delete_run)")
    return factory


def test_list_runs(cascade_state_factory):
    catalog = _catalog(cascade_state_factory)
    first, second = cascade_state_factory(new_run_id()), cascade_state_factory(new_run_id())
    try:
        first.put_results({"a": b"1", "b": b"2"})
        first.set_run_info({"status": "done", "target": "pkg.flow"})
        second.set_run_info({"status": "failed"})
        runs = {run["run_id"]: run for run in catalog.list_runs()}
        assert runs[first.run_id]["status"] == "done"
        assert runs[first.run_id]["target"] == "pkg.flow"
        assert runs[first.run_id]["results"] == "2"
        assert runs[second.run_id]["results"] == "0"
        assert all(isinstance(value, str) for run in runs.values() for value in run.values())
    finally:
        for backend in (first, second):
            backend.close()
            catalog.delete_run(backend.run_id)


def test_delete_run(cascade_state_factory):
    catalog = _catalog(cascade_state_factory)
    doomed, kept = cascade_state_factory(new_run_id()), cascade_state_factory(new_run_id())
    try:
        doomed.put_results({"a": b"1"})
        doomed.mark_skipped({"b": "why"})
        doomed.set_run_info({"status": "done"})
        kept.put_results({"a": b"kept"})
        assert catalog.delete_run(doomed.run_id) is True
        assert catalog.delete_run(doomed.run_id) is False
        assert catalog.delete_run(new_run_id()) is False
        assert doomed.run_id not in {run["run_id"] for run in catalog.list_runs()}
        fresh = cascade_state_factory(doomed.run_id)
        assert fresh.get_results(["a"]) == {}
        assert fresh.get_skip_reasons() == {}
        assert _caller_keys(fresh.get_run_info()) == {}
        fresh.close()
        assert kept.get_results(["a"]) == {"a": b"kept"}
    finally:
        for backend in (doomed, kept):
            backend.close()
        catalog.delete_run(kept.run_id)


def _caller_keys(info: dict[str, str]) -> dict[str, str]:
    """Run info without the timestamps a backend may record itself."""
    return {key: value for key, value in info.items() if key not in ("created", "updated")}


def _utc(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    assert stamp.utcoffset() == timedelta(0), f"timestamp {text!r} is not in UTC"
    return stamp


# -- optional: TaskRecords ---------------------------------------------------------


def test_task_records(cascade_state_backend):
    import json

    from cascade_core.plugin import TaskRecords

    if not isinstance(cascade_state_backend, TaskRecords):
        pytest.skip("optional capability: the backend keeps no task records (put_task_records)")
    assert cascade_state_backend.get_task_records() == {}
    first = {"n1": json.dumps({"task": "a", "status": "done"}), "n2": json.dumps({"task": "b", "status": "failed"})}
    cascade_state_backend.put_task_records(first)
    cascade_state_backend.put_task_records({"n2": json.dumps({"task": "b", "status": "done"})})
    records = cascade_state_backend.get_task_records()
    # dict[str, str]: node id -> the JSON text as written, not a parsed object.
    assert type(records) is dict
    assert all(type(key) is str and type(value) is str for key, value in records.items())
    assert records["n1"] == first["n1"]
    assert {key: json.loads(value)["status"] for key, value in records.items()} == {"n1": "done", "n2": "done"}
    cascade_state_backend.put_task_records({})
    assert len(cascade_state_backend.get_task_records()) == 2


def test_task_records_belong_to_their_run(cascade_state_factory):
    from cascade_core.plugin import TaskRecords

    first, second = cascade_state_factory(new_run_id()), cascade_state_factory(new_run_id())
    try:
        if not _has(first, TaskRecords):
            pytest.skip("optional capability: the backend keeps no task records (put_task_records)")
        first.put_task_records({"n1": '{"status": "done"}'})
        assert second.get_task_records() == {}
        again = cascade_state_factory(first.run_id)
        assert again.get_task_records() == {"n1": '{"status": "done"}'}
        again.close()
    finally:
        first.close()
        second.close()


# -- attributes the engine reads ---------------------------------------------------


def test_declared_attributes(cascade_state_factory, cascade_state_backend):
    for owner in (cascade_state_factory, cascade_state_backend):
        check_declared_attributes(owner)
