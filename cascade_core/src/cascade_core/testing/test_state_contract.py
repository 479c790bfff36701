"""The StateBackend contract, for the backend of ``--cascade-uri`` (its optional capabilities:
test_state_capabilities_contract.py). Every failure names the rule broken, in the words of
docs/backends.md, and its section."""

from __future__ import annotations

import pytest

from cascade_core.plugin import RunCatalog
from cascade_core.testing.plugin import (
    broken,
    caller_keys,
    close_quietly,
    mismatch,
    new_run_id,
    open_state_factory,
    run_concurrently,
)
from cascade_core.testing.rules import (
    BATCHES,
    BYTES,
    CONTRACTS,
    EMPTY_BATCH,
    ENFORCED,
    GET_RESULTS,
    ISOLATED,
    NAMES,
    PERSISTS,
    PUT_RESULTS,
    RESULT_IDS,
    RUN_INFO,
    SHARED,
    SKIPS,
    STATE,
    STATE_CLOSE,
    THREADS,
    UNKNOWN_RUN,
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
    assert got == PAYLOADS, broken(
        f"get_results returned payloads other than put_results stored ({mismatch(got, PAYLOADS)})", BYTES, CONTRACTS
    )
    kinds = sorted({type(value).__name__ for value in got.values()})
    assert all(type(value) is bytes for value in got.values()), broken(
        f"get_results returned values of type {', '.join(kinds)}", BYTES, CONTRACTS
    )


def test_odd_node_ids(cascade_state_backend):
    results = {node_id: node_id.encode() + b"!" for node_id in ODD_IDS}
    cascade_state_backend.put_results(results)
    got = cascade_state_backend.get_results(ODD_IDS)
    assert got == results, broken(f"get_results of odd node ids returned {mismatch(got, results)}", NAMES, CONTRACTS)
    ids = cascade_state_backend.result_ids()
    assert ids == set(ODD_IDS), broken(
        f"result_ids() of odd node ids came back {mismatch(ids, set(ODD_IDS))}", NAMES, CONTRACTS
    )


def test_large_payload(cascade_state_backend):
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB
    cascade_state_backend.put_results({"big": big})
    got = cascade_state_backend.get_results(["big"]).get("big")
    same = got == big  # a bool: pytest would diff 5 MiB of bytes otherwise (minutes, with CI set)
    assert same, broken(
        f"get_results of a 5 MiB payload returned {len(got) if got is not None else 'no'} bytes other than the "
        f"{len(big)} bytes put_results stored",
        BYTES,
        CONTRACTS,
    )


def test_missing_results_are_left_out(cascade_state_backend):
    for ids, expected in ((["nope"], {}), (["nope", "a", "other"], {"a": b"1"}), ([], {})):
        if expected:
            cascade_state_backend.put_results(expected)
        got = cascade_state_backend.get_results(ids)
        assert got == expected, broken(f"get_results({ids!r}) returned {mismatch(got, expected)}", GET_RESULTS, STATE)


def test_get_results_accepts_any_iterable(cascade_state_backend):
    cascade_state_backend.put_results({"a": b"1", "b": b"2"})
    got = cascade_state_backend.get_results(node_id for node_id in ["a", "b", "c"])
    assert got == {"a": b"1", "b": b"2"}, broken(
        f"get_results of a generator returned {mismatch(got, {'a': b'1', 'b': b'2'})}",
        "get_results(node_ids: Iterable[str]) takes any iterable, read once",
        STATE,
    )
    got = cascade_state_backend.get_results(["a", "a"])
    assert got == {"a": b"1"}, broken(
        f"get_results(['a', 'a']) returned {mismatch(got, {'a': b'1'})}", GET_RESULTS, STATE
    )


def test_many_results_in_one_batch(cascade_state_backend):
    results = {f"node-{i}": f"value-{i}".encode() for i in range(3000)}
    cascade_state_backend.put_results(results)
    got = cascade_state_backend.get_results(list(results))
    rule = f"{BATCHES}; {GET_RESULTS}"
    assert got == results, broken(f"get_results of a batch of 3,000 returned {mismatch(got, results)}", rule, STATE)
    ids = cascade_state_backend.result_ids()
    assert ids == set(results), broken(
        f"result_ids() after a batch of 3,000 came back {mismatch(ids, set(results))}", RESULT_IDS, STATE
    )


def test_overwrite(cascade_state_backend):
    cascade_state_backend.put_results({"a": b"old", "b": b"kept"})
    cascade_state_backend.put_results({"a": b"new"})
    got = cascade_state_backend.get_results(["a", "b"])
    expected = {"a": b"new", "b": b"kept"}
    assert got == expected, broken(
        f"after a second put_results, get_results returned {mismatch(got, expected)}",
        PUT_RESULTS,
        STATE,
    )


def test_empty_batches_change_nothing(cascade_state_backend):
    cascade_state_backend.put_results({})
    cascade_state_backend.mark_skipped({})
    ids, reasons = cascade_state_backend.result_ids(), cascade_state_backend.get_skip_reasons()
    assert ids == set(), broken(f"put_results({{}}) left result ids {mismatch(ids, set())}", EMPTY_BATCH, CONTRACTS)
    assert reasons == {}, broken(
        f"mark_skipped({{}}) left skip reasons {mismatch(reasons, {})}", EMPTY_BATCH, CONTRACTS
    )


def test_result_ids(cascade_state_backend):
    ids = cascade_state_backend.result_ids()
    assert ids == set(), broken(f"result_ids() of a new run came back {mismatch(ids, set())}", RESULT_IDS, STATE)
    cascade_state_backend.put_results({"a": b"1"})
    cascade_state_backend.put_results({"b": b"2", "a": b"3"})
    ids = cascade_state_backend.result_ids()
    assert ids == {"a", "b"}, broken(f"result_ids() came back {mismatch(ids, {'a', 'b'})}", RESULT_IDS, STATE)
    assert isinstance(ids, set), broken(
        f"result_ids() returned a {type(ids).__name__}", "result_ids() -> set[str]", STATE
    )


def test_skip_reasons(cascade_state_backend):
    reasons = cascade_state_backend.get_skip_reasons()
    assert reasons == {}, broken(f"get_skip_reasons() of a new run returned {mismatch(reasons, {})}", SKIPS, STATE)
    cascade_state_backend.mark_skipped({"a": "upstream 'x' failed", "b": "cancelled"})
    cascade_state_backend.mark_skipped({"b": "upstream 'y' failed", "c": "r\u00e9sum\u00e9"})
    expected = {"a": "upstream 'x' failed", "b": "upstream 'y' failed", "c": "r\u00e9sum\u00e9"}
    reasons = cascade_state_backend.get_skip_reasons()
    assert reasons == expected, broken(
        f"after two mark_skipped, get_skip_reasons() returned {mismatch(reasons, expected)}", SKIPS, STATE
    )
    ids = cascade_state_backend.result_ids()
    assert ids == set(), broken(f"mark_skipped added result ids {mismatch(ids, set())}", RESULT_IDS, STATE)


def test_run_info_merges(cascade_state_backend):
    info = caller_keys(cascade_state_backend.get_run_info())
    assert info == {}, broken(f"get_run_info() of a new run returned {mismatch(info, {})}", UNKNOWN_RUN, STATE)
    cascade_state_backend.set_run_info({"status": "running", "target": "pkg.flow"})
    cascade_state_backend.set_run_info({"status": "done"})
    info, expected = caller_keys(cascade_state_backend.get_run_info()), {"status": "done", "target": "pkg.flow"}
    assert info == expected, broken(
        f"after two set_run_info, get_run_info() returned {mismatch(info, expected)}", RUN_INFO, STATE
    )


def test_unknown_run_has_no_info(cascade_state_factory):
    with_info = cascade_state_factory(new_run_id())
    with_info.set_run_info({"status": "done"})
    unknown = cascade_state_factory(new_run_id())
    try:
        info, results, reasons = unknown.get_run_info(), unknown.get_results(["a"]), unknown.get_skip_reasons()
        assert info == {}, broken(f"get_run_info() of a run never written returned {info!r}", UNKNOWN_RUN, STATE)
        assert results == {}, broken(f"get_results of a run never written returned {results!r}", UNKNOWN_RUN, STATE)
        assert reasons == {}, broken(
            f"get_skip_reasons() of a run never written returned {reasons!r}", UNKNOWN_RUN, STATE
        )
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
        got, expected = first.get_results(["shared-id", "only-first"]), {"shared-id": b"first", "only-first": b"1"}
        assert got == expected, broken(
            f"another run's write left this run's results {mismatch(got, expected)}", ISOLATED, CONTRACTS
        )
        got = second.get_results(["shared-id", "only-first"])
        assert got == {"shared-id": b"second"}, broken(
            f"get_results of one run returned another's results ({mismatch(got, {'shared-id': b'second'})})",
            ISOLATED,
            CONTRACTS,
        )
        ids, reasons, info = second.result_ids(), second.get_skip_reasons(), second.get_run_info()
        assert ids == {"shared-id"}, broken(
            f"result_ids() of one run came back {mismatch(ids, {'shared-id'})}", ISOLATED, CONTRACTS
        )
        assert reasons == {}, broken(
            f"get_skip_reasons() of one run returned another's ({reasons!r})", ISOLATED, CONTRACTS
        )
        assert "status" not in info, broken(
            f"get_run_info() of one run returned another's ({info!r})", ISOLATED, CONTRACTS
        )
    finally:
        first.close()
        second.close()


def test_two_backends_for_one_run_share_it(cascade_state_factory):
    run_id = new_run_id()
    writer, reader = cascade_state_factory(run_id), cascade_state_factory(run_id)
    try:
        writer.put_results({"a": b"1"})
        writer.mark_skipped({"b": "why"})
        got, reasons = reader.get_results(["a"]), reader.get_skip_reasons()
        assert got == {"a": b"1"}, broken(
            f"a second backend of the run read results {mismatch(got, {'a': b'1'})}", SHARED, CONTRACTS
        )
        assert reasons == {"b": "why"}, broken(
            f"a second backend of the run read skip reasons {mismatch(reasons, {'b': 'why'})}", SHARED, CONTRACTS
        )
        assert reader.run_id == run_id, broken(
            f"the factory called with {run_id!r} gave a backend whose run_id is {reader.run_id!r}",
            "run_id: the run this backend is bound to",
            STATE,
        )
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
            again, run = cascade_state_factory(backend.run_id), repr(backend.run_id)[:40]
            got, ids, reasons = again.get_results(["n"]), again.result_ids(), again.get_skip_reasons()
            status = again.get_run_info().get("status")
            assert got == {"n": backend.run_id.encode()}, broken(f"run {run} read results {got!r}", NAMES, CONTRACTS)
            assert ids == {"n"}, broken(f"run {run} has result ids {mismatch(ids, {'n'})}", NAMES, CONTRACTS)
            assert reasons == {"s": backend.run_id}, broken(f"run {run} has skip reasons {reasons!r}", NAMES, CONTRACTS)
            assert status == backend.run_id, broken(f"run {run} has status {status!r}", NAMES, CONTRACTS)
            again.close()
        if isinstance(cascade_state_factory, RunCatalog):
            listed = {run["run_id"]: run["status"] for run in cascade_state_factory.list_runs()}
            statuses = {run_id: listed.get(run_id) for run_id in run_ids}
            assert statuses == {run_id: run_id for run_id in run_ids}, broken(
                f"list_runs() gave runs of odd ids {mismatch(statuses, {run_id: run_id for run_id in run_ids})}",
                NAMES,
                CONTRACTS,
            )
            deleted = cascade_state_factory.delete_run(run_ids[1])
            assert deleted is True, broken(f"delete_run of a run with an odd id returned {deleted!r}", NAMES, CONTRACTS)
            got = backends[0].get_results(["n"])
            assert got == {"n": run_ids[0].encode()}, broken(
                f"delete_run({run_ids[1]!r}) also deleted run {run_ids[0]!r}", NAMES, CONTRACTS
            )
    finally:
        for backend in backends:
            backend.close()


def test_persists_across_factories(cascade_uri, cascade_state_backend):
    cascade_state_backend.put_results({"a": b"kept"})
    cascade_state_backend.set_run_info({"status": "done"})
    factory = open_state_factory(cascade_uri)
    try:
        again = factory(cascade_state_backend.run_id)
        got, status = again.get_results(["a"]), again.get_run_info().get("status")
        assert got == {"a": b"kept"}, broken(
            f"a new factory read the run's results {mismatch(got, {'a': b'kept'})}", PERSISTS, ENFORCED
        )
        assert status == "done", broken(f"a new factory read the run's status {status!r}", PERSISTS, ENFORCED)
        again.close()
    finally:
        close_quietly(factory)


def test_close_twice_is_harmless(cascade_state_factory):
    backend = cascade_state_factory(new_run_id())
    backend.put_results({"a": b"1"})
    backend.close()
    try:
        backend.close()
    except Exception as exc:
        pytest.fail(broken(f"a second close() raised {type(exc).__name__}: {exc}", STATE_CLOSE, STATE))
    reopened = cascade_state_factory(backend.run_id)
    got = reopened.get_results(["a"])
    assert got == {"a": b"1"}, broken(
        f"after close(), the run's results came back {mismatch(got, {'a': b'1'})}", STATE_CLOSE, STATE
    )
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
        assert not errors, broken(f"8 threads writing one run raised {errors!r}", THREADS, CONTRACTS)
        expected = {f"w{worker}-{i}" for worker in range(8) for i in range(20)}
        ids = shared.result_ids()
        assert ids == expected, broken(
            f"8 threads writing one run left result ids {mismatch(ids, expected)}", THREADS, CONTRACTS
        )
        got = shared.get_results(["w3-7"])
        assert got == {"w3-7": b"3:7"}, broken(f"8 threads writing one run left results {got!r}", THREADS, CONTRACTS)
        info = shared.get_run_info()
        lost = [worker for worker in range(8) if info.get(f"worker-{worker}") != "19"]
        assert not lost, broken(f"8 threads merging run info lost the last write of workers {lost}", THREADS, CONTRACTS)
    finally:
        shared.close()
