"""cascade-dask against real Dask clusters (tests/dask/conftest.py): values stay on the workers,
the engine's guarantees hold, cancellation leaves nothing on the scheduler, worker death, pickling."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import distributed
import pytest

import cascade_core as cs
from cascade_core.testing import executor_tasks as t
from cascade_dask import DaskExecutor, DaskValue

from .conftest import keys_on_scheduler, uri_of

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes cannot import this test module
ROOT = Path(__file__).resolve().parents[2]


@cs.task
def on_worker_loop(x):
    return x


@cs.task
async def async_where(x):
    await asyncio.sleep(0)
    worker = distributed.get_worker()  # only on a worker's event loop (or its threads)
    return worker.address, threading.current_thread().name, x


@cs.task
def marked(folder, i):
    """Leaves a file per execution; waits for `go` when i >= 3 (at most 60 s)."""
    Path(folder, f"run-{i}-{time.time_ns()}").touch()
    deadline = time.monotonic() + 60
    while i >= 3 and not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return i


@cs.task
def die_once(folder):
    """Kills its own worker process the first time it runs."""
    Path(folder, f"run-{os.getpid()}-{time.time_ns()}").touch()
    first = Path(folder, "died")
    if not first.exists():
        first.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


@cs.task
def keep(value):
    return repr(value)


@cs.task(cache=True)
def cached_len(folder, text):
    Path(folder, f"len-{time.time_ns()}").touch()
    return len(str(text))


def _runs(folder: Path, prefix: str) -> int:
    return len(list(folder.glob(prefix + "*")))


def test_values_stay_on_the_workers_and_upstream_futures_go_downstream(thread_cluster):
    executor = DaskExecutor(thread_cluster)
    outcomes = []
    finished = threading.Event()

    def done(outcome):
        outcomes.append(outcome)
        finished.set()

    from cascade_core.plugin import TaskCall

    executor.submit(TaskCall(0, "up", t.inc, (41,), {}), done)
    assert finished.wait(30)
    up = outcomes.pop()
    assert up.ok and type(up.value) is DaskValue and up.body == __import__("pickle").dumps(42, protocol=5)
    finished.clear()
    # The engine substitutes the upstream's handle; Dask hands the downstream the upstream's result.
    executor.submit(TaskCall(1, "down", t.total, ([up.value, 8, up.value],), {}), done)
    assert finished.wait(30)
    finished.clear()
    executor.submit(TaskCall(2, "nested", keep, ({"k": (up.value, {up.value})},), {}), done)
    assert finished.wait(30)
    down, nested = outcomes
    assert executor.gather([down.value, "as is", nested.value]) == [92, "as is", "{'k': (42, {42})}"]
    assert executor.max_workers == 100  # more in flight than threads: Dask queues them


def test_a_run_gives_real_values_and_the_run_leaves_nothing_on_the_scheduler(thread_cluster, tmp_path):
    uri = uri_of(thread_cluster)
    target = {"sum": t.total([t.inc(i) for i in range(30)]), "pair": (t.inc(1), t.inc(7))}
    assert cs.run(target, executor=uri) == {"sum": 465, "pair": (2, 8)}
    assert keys_on_scheduler(thread_cluster, "cascade_core") == []
    # The cluster was not ours: it still runs tasks.
    assert thread_cluster.submit(sum, [1, 2]).result() == 3


def test_async_tasks_run_on_the_workers_event_loop(thread_cluster):
    workers = set(thread_cluster.scheduler_info()["workers"])
    results = cs.run([async_where(i) for i in range(3)], executor=DaskExecutor(thread_cluster))
    assert {address for address, _, _ in results} <= workers
    assert [x for _, _, x in results] == [0, 1, 2]
    assert all(not thread.startswith("Dask-Default-Threads") for _, thread, _ in results)  # not a worker thread


def test_a_cache_key_from_an_upstream_value_is_computed_from_the_real_value(thread_cluster, tmp_path):
    executor = DaskExecutor(thread_cluster)
    db = f"sqlite:///{tmp_path}/c.db"
    target = cached_len(str(tmp_path), t.inc(41))  # t.double has no cache key: its value is hashed
    assert cs.run(target, state_backend=db, cache_backend=db, executor=executor) == 2
    report = cs.Engine(db, db, executor=executor).execute(target)
    assert report.counts["cached"] == 1 and _runs(tmp_path, "len-") == 1


def test_an_unpicklable_argument_or_task_fails_before_anything_is_submitted(thread_cluster):
    executor = DaskExecutor(thread_cluster)
    before = set(keys_on_scheduler(thread_cluster))  # earlier tests' keys may still be going away
    with pytest.raises(cs.TaskFailed) as failed:
        cs.run(keep(cs.Param("lock", default=None)), {"lock": threading.Lock()}, executor=executor)
    message = str(failed.value.__cause__)
    assert message == (
        f"task {keep.name!r} cannot be sent to Dask workers: argument #0 cannot be pickled: "
        "cannot pickle '_thread.lock' object"
    )
    lock = threading.Lock()
    holds = cs.task(name="holds_lock")(lambda: lock.locked())
    with pytest.raises(cs.TaskFailed, match="task 'holds_lock' cannot be sent to Dask workers: its function cannot"):
        cs.run(holds(), executor=executor)
    assert set(keys_on_scheduler(thread_cluster)) <= before  # nothing of these runs was submitted


def test_retries_are_cascades_with_the_attempt_in_the_key(thread_cluster, tmp_path):
    assert cs.run(t.flaky(str(tmp_path), 2), executor=DaskExecutor(thread_cluster)) == 3
    assert t.count(str(tmp_path), "flaky") == 3


def test_backends_check_names_the_workers_and_an_absent_scheduler_fails_in_time(thread_cluster):
    from .conftest import free_port

    ok = _cascade("backends", "check", uri_of(thread_cluster))
    assert ok.returncode == 0, ok.stderr
    assert "executor: ok" in ok.stdout and "1 worker)" in ok.stdout and "100 at once" in ok.stdout
    started = time.monotonic()
    port = free_port()
    down = _cascade("backends", "check", f"dask://127.0.0.1:{port}?timeout=1")
    assert down.returncode == 1 and time.monotonic() - started < 20
    assert f"no Dask scheduler answers at dask://127.0.0.1:{port}?timeout=1 within 1 s" in down.stdout


def test_without_distributed_a_dask_uri_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "import cascade_core as cs\n"
        "try:\n    cs.run(cs.task(abs)(-1), executor='dask://127.0.0.1:1')\n"
        "except cs.CascadeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "pip install cascade-dask" in out.stdout, out.stdout + out.stderr
    assert out.stdout.count("\n") == 1


@pytest.mark.slow
def test_dask_local_closes_its_own_cluster_after_the_run(wait_until):
    before = {thread.name for thread in threading.enumerate()}
    assert cs.run(t.total([t.inc(i) for i in range(5)]), executor="dask+local://?n_workers=1&processes=false") == 15

    # distributed's offload and callback pools are process-wide: made once, kept for the next cluster.
    shared = ("Dask-Offload", "Dask-Callback-Thread")

    def dask_threads_gone() -> bool:
        new = {thread.name for thread in threading.enumerate()} - before
        return not any("Dask" in name and not name.startswith(shared) for name in new)

    wait_until(dask_threads_gone, 10, "the local cluster's threads to end")


@pytest.mark.slow
def test_a_worker_killed_mid_task_reruns_it_elsewhere_and_the_result_is_stored_once(process_cluster, tmp_path):
    db = f"sqlite:///{tmp_path}/state.db"
    report = cs.Engine(db, "memory://", executor=uri_of(process_cluster)).execute(die_once(str(tmp_path)), run_id="w")
    assert report.status == "succeeded" and report.counts["executed"] == 1
    pids = [int(path.name.split("-")[1]) for path in sorted(tmp_path.glob("run-*"), key=lambda p: p.name.split("-")[2])]
    assert len(pids) == 2 and report.value == pids[1] != pids[0]  # the second run was in another process
    again = cs.Engine(db, "memory://", executor=uri_of(process_cluster)).execute(die_once(str(tmp_path)), run_id="w")
    assert again.counts == {**again.counts, "resumed": 1, "executed": 0} and again.value == pids[1]


@pytest.mark.slow
def test_a_cancelled_arun_releases_its_futures_on_the_scheduler(process_cluster, tmp_path):
    uri = uri_of(process_cluster)
    target = [marked(str(tmp_path), 3 + i) for i in range(4)]

    async def main():
        running = asyncio.ensure_future(cs.arun(target, executor=uri))
        deadline = time.monotonic() + 30
        while _runs(tmp_path, "run-") < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _runs(tmp_path, "run-") == 2  # one call on each single-threaded worker
        started = time.monotonic()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        return time.monotonic() - started

    try:
        assert asyncio.run(main()) < 10
        assert [key for key in keys_on_scheduler(process_cluster) if "marked" in key] == []
    finally:
        (tmp_path / "go").touch()  # the two running calls end; their results are not wanted


SCRIPT = """
import sys
import cascade_core as cs

def times(k):
    @cs.task(name=f"times{k}")
    def multiply(x):
        return x * k  # a closure over k
    return multiply

square = cs.task(name="square")(lambda x: x * x)

@cs.task
def pid():
    import os
    return os.getpid()

def pipeline():
    return [times(3)(square(i)) for i in range(4)]

if __name__ == "__main__":
    import os
    print(cs.run([pipeline(), pid()], executor=sys.argv[1]), os.getpid())
"""


@pytest.mark.slow
def test_tasks_from_a_script_closures_and_lambdas_run_in_worker_processes(process_cluster, tmp_path):
    (tmp_path / "flow.py").write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, "flow.py", uri_of(process_cluster)], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    values, driver = out.stdout.rsplit(" ", 1)
    result, worker_pid = eval(values)
    assert result == [0, 3, 12, 27] and worker_pid != int(driver)
    # The same flow through the CLI, which loads flow.py by its path: workers cannot import it.
    cli = _cascade("run", "flow.py:pipeline", "--executor", uri_of(process_cluster), "--json", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert '"result": [0, 3, 12, 27]' in cli.stdout


def _cascade(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.slow
def test_the_executor_conformance_kit_passes_on_dask_local(tmp_path):
    uri = "dask+local://?n_workers=1&processes=false"
    kit = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs", "cascade_core.testing"]
    out = subprocess.run([*kit, "--cascade-uri", uri], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


def test_bad_dask_uris_are_refused_in_one_line():
    with pytest.raises(cs.InvalidURIError, match=r"needs the option\(s\) cert_file, key_file: the CA, certificate"):
        cs.run(t.inc(1), executor="dask+tls://scheduler:8786?ca_file=ca.pem")
    with pytest.raises(cs.InvalidURIError, match="n_workers"):
        cs.run(t.inc(1), executor="dask+local://?n_workers=none")
