"""Capabilities are read once per run, from the backends' and executor's optional members
(cascade_core/_plugins/capabilities.py), and a run uses what they say."""

from __future__ import annotations

import pytest

import cascade_core as cs
from cascade_core._plugins.capabilities import DEFAULT_OUTCOME_TIMEOUT, ExecutorCapabilities, StoreCapabilities


class _Bare:
    pass


class _Declares:
    serializer = "json"
    trusted_store = True
    max_payload_bytes = 10
    max_payload_option = "max_value_size"
    in_driver = True
    outcome_timeout = 5

    def put_task_records(self, records): ...

    def count_entries(self, keys):
        return 0

    def gather(self, values):
        return values

    def hold_reference(self, reference, encoding): ...

    def use_event_loop(self, loop): ...


def test_absent_members_mean_the_documented_defaults():
    store, executor = StoreCapabilities.of(_Bare()), ExecutorCapabilities.of(_Bare())
    assert store == StoreCapabilities("pickle", False, None, None, None, None)
    assert executor == ExecutorCapabilities(False, None, None, None, DEFAULT_OUTCOME_TIMEOUT)


def test_declared_members_are_taken():
    backend = _Declares()
    store, executor = StoreCapabilities.of(backend), ExecutorCapabilities.of(backend)
    assert (store.serializer, store.trusted_store, store.max_payload_bytes) == ("json", True, 10)
    assert store.task_records is backend and store.count_entries is not None and store.count_entries([]) == 0
    assert executor.in_driver and executor.outcome_timeout == 5.0
    assert executor.gather is not None and executor.gather([1]) == [1]
    assert executor.hold_reference is not None and executor.use_event_loop is not None


@pytest.mark.parametrize("value", [0, -1, float("nan"), "5", True])
def test_an_outcome_timeout_that_is_no_positive_number_means_the_default(value):
    executor = _Bare()
    executor.outcome_timeout = value  # type: ignore[attr-defined]
    assert ExecutorCapabilities.of(executor).outcome_timeout == DEFAULT_OUTCOME_TIMEOUT


def test_none_turns_the_outcome_check_off():
    executor = _Bare()
    executor.outcome_timeout = None  # type: ignore[attr-defined]
    assert ExecutorCapabilities.of(executor).outcome_timeout is None


def test_a_truthy_non_bool_in_driver_is_not_taken_for_true():
    executor = _Bare()
    executor.in_driver = 1  # type: ignore[attr-defined]
    assert ExecutorCapabilities.of(executor).in_driver is False


def test_a_run_reads_each_optional_member_of_its_cache_once(monkeypatch):
    reads: list[str] = []
    cache = cs.MemoryCacheBackend()
    real = type(cache)

    class Counting(real):  # type: ignore[misc, valid-type]
        def __getattribute__(self, name):
            if name in ("serializer", "trusted_store", "max_payload_bytes", "max_payload_option", "count_entries"):
                reads.append(name)
            return super().__getattribute__(name)

    counting = Counting()

    @cs.task(cache=True)
    def square(x: int) -> int:
        return x * x

    assert cs.run([square(i) for i in range(50)], cache_backend=counting) == [i * i for i in range(50)]
    assert "serializer" in reads and "count_entries" in reads, reads
    assert sorted(set(reads)) == sorted(reads), reads  # each read once, however many tasks
