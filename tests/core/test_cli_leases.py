"""`cascade run --leases`: two CLI drivers of one run id run each task once."""

from __future__ import annotations

import os
import subprocess
import sys


def test_two_cli_drivers_with_leases_run_each_task_once(tmp_path):
    log = tmp_path / "executions.log"
    (tmp_path / "flow.py").write_text(
        "import os, time\n"
        "import cascade_core as cs\n"
        "@cs.task\n"
        "def step(i):\n"
        "    with open(os.environ['LOG'], 'a') as f:\n"
        "        f.write(f'{i}\\n')\n"
        "    time.sleep(0.3)\n"
        "    return i\n"
        "@cs.task\n"
        "def total(xs):\n"
        "    return sum(xs)\n"
        "target = total([step(i) for i in range(6)])\n"
    )
    env = {
        **os.environ,
        "LOG": str(log),
        "CASCADE_STATE": f"sqlite:///{tmp_path / 's.db'}",
        "CASCADE_CACHE": "memory://",
    }
    command = [
        sys.executable,
        "-m",
        "cascade_core",
        "run",
        "flow.py:target",
        "--run-id",
        "shared",
        "--leases",
        "--json",
        "--workers",
        "2",
    ]
    procs = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert sorted(log.read_text().split()) == [str(i) for i in range(6)]  # each step once, across both
    assert all('"result": 15' in out for out, _ in outputs)
