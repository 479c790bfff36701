"""The state backend's optional capabilities (created/updated timestamps, RunCatalog,
TaskRecords) and the attributes the engine reads, for the backend of ``--cascade-uri``.

Each capability a backend lacks is skipped with "optional capability". Every failure names the
rule broken, in the words of docs/backends.md, and its section.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest

from cascade_core.plugin import RunCatalog, TaskRecords
from cascade_core.testing.plugin import broken, caller_keys, check_declared_attributes, mismatch, new_run_id
from cascade_core.testing.rules import (
    CAPABILITIES,
    CONTRACTS,
    DELETE_RUN,
    ISOLATED,
    LIST_RUNS,
    RUN_INFO,
    STAMPS,
    STATE,
    TASK_RECORDS,
)

# -- optional: created/updated timestamps ---------------------------------------


def test_timestamps(cascade_state_backend):
    cascade_state_backend.set_run_info({"status": "running"})
    info = cascade_state_backend.get_run_info()
    if "created" not in info:
        pytest.skip("optional capability: this backend records no created/updated timestamps")
    created = _utc(info["created"])
    assert abs(datetime.now(created.tzinfo) - created) < timedelta(minutes=5), broken(
        f"a run written now has created {info['created']!r}", STAMPS, STATE
    )
    time.sleep(0.01)
    cascade_state_backend.put_results({"a": b"1"})
    later = cascade_state_backend.get_run_info()
    assert later["created"] == info["created"], broken(
        f"put_results moved created from {info['created']!r} to {later['created']!r}", STAMPS, STATE
    )
    assert _utc(later["updated"]) > _utc(info["updated"]), broken(
        f"put_results left updated at {later['updated']!r} (it was {info['updated']!r})", STAMPS, STATE
    )
    assert later["status"] == "running", broken(f"put_results changed status to {later['status']!r}", RUN_INFO, STATE)


# -- optional: RunCatalog on the factory ------------------------------------------


def _catalog(factory):
    if not isinstance(factory, RunCatalog):
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
        assert first.run_id in runs and second.run_id in runs, broken(
            "list_runs() left out a run just written", LIST_RUNS, CAPABILITIES
        )
        fields = {key: runs[first.run_id].get(key) for key in ("status", "target", "results")}
        expected = {"status": "done", "target": "pkg.flow", "results": "2"}
        assert fields == expected, broken(
            f"list_runs() gave a run {mismatch(fields, expected)}", LIST_RUNS, CAPABILITIES
        )
        results = runs[second.run_id].get("results")
        assert results == "0", broken(
            f"list_runs() gave results {results!r} for a run of none", LIST_RUNS, CAPABILITIES
        )
        odd = sorted({type(value).__name__ for run in runs.values() for value in run.values()} - {"str"})
        assert not odd, broken(f"list_runs() gave values of type {', '.join(odd)}", LIST_RUNS, CAPABILITIES)
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
        answers = [catalog.delete_run(doomed.run_id), catalog.delete_run(doomed.run_id)]
        answers.append(catalog.delete_run(new_run_id()))
        assert answers == [True, False, False], broken(
            f"delete_run of a run, of it again and of a run never written returned {answers!r}",
            DELETE_RUN,
            CAPABILITIES,
        )
        assert doomed.run_id not in {run["run_id"] for run in catalog.list_runs()}, broken(
            "list_runs() still lists a deleted run", DELETE_RUN, CAPABILITIES
        )
        fresh = cascade_state_factory(doomed.run_id)
        left = {
            "results": fresh.get_results(["a"]),
            "skip reasons": fresh.get_skip_reasons(),
            "run info": caller_keys(fresh.get_run_info()),
        }
        assert left == dict.fromkeys(left, {}), broken(f"a deleted run still has {left!r}", DELETE_RUN, CAPABILITIES)
        fresh.close()
        got = kept.get_results(["a"])
        assert got == {"a": b"kept"}, broken(
            f"delete_run of one run left another's results {got!r}", DELETE_RUN, CAPABILITIES
        )
    finally:
        for backend in (doomed, kept):
            backend.close()
        catalog.delete_run(kept.run_id)


def _utc(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    assert stamp.utcoffset() == timedelta(0), broken(f"timestamp {text!r} is not in UTC", STAMPS, STATE)
    return stamp


# -- optional: TaskRecords ---------------------------------------------------------


def test_task_records(cascade_state_backend):
    if not isinstance(cascade_state_backend, TaskRecords):
        pytest.skip("optional capability: the backend keeps no task records (put_task_records)")
    records = cascade_state_backend.get_task_records()
    assert records == {}, broken(
        f"get_task_records() of a new run returned {mismatch(records, {})}", TASK_RECORDS, CAPABILITIES
    )
    first = {"n1": json.dumps({"task": "a", "status": "done"}), "n2": json.dumps({"task": "b", "status": "failed"})}
    cascade_state_backend.put_task_records(first)
    cascade_state_backend.put_task_records({"n2": json.dumps({"task": "b", "status": "done"})})
    records = cascade_state_backend.get_task_records()
    # dict[str, str]: node id -> the JSON text as written, not a parsed object.
    text = type(records) is dict and all(type(key) is str and type(value) is str for key, value in records.items())
    assert text, broken(
        f"get_task_records() returned {type(records).__name__} {records!r:.80}", TASK_RECORDS, CAPABILITIES
    )
    assert records.get("n1") == first["n1"], broken(
        f"get_task_records() returned {records.get('n1')!r} for {first['n1']!r}", TASK_RECORDS, CAPABILITIES
    )
    statuses = {key: json.loads(value)["status"] for key, value in records.items()}
    assert statuses == {"n1": "done", "n2": "done"}, broken(
        f"after a record was replaced, the records' statuses are {statuses!r}", TASK_RECORDS, CAPABILITIES
    )
    cascade_state_backend.put_task_records({})
    count = len(cascade_state_backend.get_task_records())
    assert count == 2, broken(f"put_task_records({{}}) left {count} records of 2", TASK_RECORDS, CAPABILITIES)


def test_task_records_belong_to_their_run(cascade_state_factory):
    first, second = cascade_state_factory(new_run_id()), cascade_state_factory(new_run_id())
    try:
        keeps_records = isinstance(first, TaskRecords)  # a variable: the backend's other methods stay in view
        if not keeps_records:
            pytest.skip("optional capability: the backend keeps no task records (put_task_records)")
        first.put_task_records({"n1": '{"status": "done"}'})
        records = second.get_task_records()
        assert records == {}, broken(
            f"get_task_records() of one run returned another's ({records!r})", ISOLATED, CONTRACTS
        )
        again = cascade_state_factory(first.run_id)
        records = again.get_task_records()
        assert records == {"n1": '{"status": "done"}'}, broken(
            f"a second backend of the run read records {records!r}", TASK_RECORDS, CAPABILITIES
        )
        again.close()
    finally:
        first.close()
        second.close()


# -- attributes the engine reads ---------------------------------------------------


def test_declared_attributes(cascade_state_factory, cascade_state_backend):
    for owner in (cascade_state_factory, cascade_state_backend):
        check_declared_attributes(owner)
