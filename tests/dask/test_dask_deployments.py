"""cascade-dask as users deploy it: a `dask scheduler` and a `dask worker` started as separate
processes, and a driver killed mid-run that resumes on the cluster with Redis state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import free_port, uri_of

ROOT = Path(__file__).resolve().parents[2]


def _cascade(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], capture_output=True, text=True, cwd=cwd, timeout=180
    )


def _wait(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_separate_scheduler_and_worker_run_the_example(tmp_path):
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp_path}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--dashboard-address", ":0"],
        **quiet,
    )  # fmt: skip
    worker = None
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}", "--nthreads", "2",
             "--no-dashboard", "--no-nanny"],
            **quiet,
        )  # fmt: skip
        check = _cascade("backends", "check", f"dask://127.0.0.1:{port}?timeout=60", cwd=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"DaskExecutor(tcp://127.0.0.1:{port}, 1 worker)" in check.stdout
        assert f"process {worker.pid}" in check.stdout
        example = str(ROOT / "examples" / "wordcount.py") + ":pipeline"
        first = _cascade("run", example, "--executor", f"dask://127.0.0.1:{port}", "--json", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        again = _cascade("run", example, "--executor", f"dask://127.0.0.1:{port}", "--json", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        first_report, again_report = json.loads(first.stdout), json.loads(again.stdout)
        assert first_report["result"] == again_report["result"]
        assert first_report["counts"]["cached"] == 0 and again_report["counts"]["cached"] == 16  # the cache worked
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


DRIVER = """
import sys
from pathlib import Path
import cascade_core as cs

@cs.task
def marked(folder, i):
    import time
    Path(folder, f"run-{i}-{time.time_ns()}").touch()
    deadline = time.monotonic() + 60
    while i >= 3 and not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return i

@cs.task
def total(values):
    return sum(values)

folder, state, executor = sys.argv[1:4]
print(cs.run(total([marked(folder, i) for i in range(6)]), state_backend=state, executor=executor,
             run_id="killed", lease_ttl=1))
"""


@pytest.mark.slow
@pytest.mark.redis
def test_a_driver_killed_mid_run_resumes_with_only_the_unfinished_tasks(
    thread_cluster, tmp_path, redis_servers, store_at, wait_until
):
    server = redis_servers.RedisServer(tmp_path)
    server.start()
    try:
        script = tmp_path / "driver.py"
        script.write_text(DRIVER)
        args = [sys.executable, str(script), str(tmp_path), server.uri, uri_of(thread_cluster)]
        driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def runs(i):
            return len(list(tmp_path.glob(f"run-{i}-*")))

        _wait(lambda: all(runs(i) == 1 for i in range(6)))
        wait_until(lambda: len(store_at(server.uri).stored_ids("killed")) >= 3, 30, "three results stored in Redis")
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
        (tmp_path / "go").touch()  # the orphaned calls on the cluster end
        wait_until(lambda: store_at(server.uri).run_lease_free("killed"), 10, "the dead driver's run lease to expire")
        resumed = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.strip() == "15"
        assert [runs(i) for i in range(6)] == [1, 1, 1, 2, 2, 2]
    finally:
        server.stop()
