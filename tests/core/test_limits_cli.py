"""`cascade limits` and `cascade run --resources` as users run them: real processes, a sqlite file."""

from __future__ import annotations

import json
import time

import pytest
from cascade_test_cli import FLOW_HEAD, STORE, calls, cli, ok, start, write_flow

LIMITED_FLOW = (
    FLOW_HEAD
    + """
import time


@cs.task(limits=["api"])
def call(i: int) -> int:
    note("call")
    with open(os.environ["FLOW_LOG"] + ".starts", "a") as starts:
        starts.write(f"{time.time()}\\n")
    time.sleep(float(os.environ.get("FLOW_SLOW", "0.05")))
    return i


@cs.task(resources={"gpu": 1})
def train(i: int) -> int:
    note("train")
    return i


def pipeline():
    return [call(i) for i in range(int(os.environ.get("FLOW_N", "6")))]


def gpus():
    return [train(i) for i in range(3)]


def unset():
    return cs.task(limits=["nowhere"], name="needs_nowhere")(lambda: 1)()
"""
)


@pytest.fixture
def flow(tmp_path):
    return write_flow(tmp_path, LIMITED_FLOW)


def test_set_show_pause_resume_delete(flow):
    done = ok(flow, "limits", "set", "api", "--concurrency", "5", "--rate", "10/s", *STORE[:2])
    assert "limit api set in sqlite:///runs.db: concurrency 5, rate 10/s (burst 1)" in done.stdout
    shown = json.loads(ok(flow, "limits", "show", "--json", *STORE[:2]).stdout)
    assert shown["api"] | {"recent_starts": None} == {
        "concurrency": 5,
        "rate": 10.0,
        "per": 1.0,
        "burst": 1,
        "paused": False,
        "holders": 0,
        "waiting": 0,
        "recent_starts": None,
        "next_start_in": 0.0,
    }
    ok(flow, "limits", "pause", "api", *STORE[:2])
    assert json.loads(ok(flow, "limits", "show", "api", "--json", *STORE[:2]).stdout)["api"]["paused"] is True
    table = ok(flow, "limits", "show", *STORE[:2]).stdout
    assert table.splitlines()[1].split()[:2] == ["api", "concurrency"] and " paused " in table
    ok(flow, "limits", "resume", "api", *STORE[:2])
    assert "limit api deleted" in ok(flow, "limits", "delete", "api", *STORE[:2]).stdout
    assert json.loads(ok(flow, "limits", "show", "--json", *STORE[:2]).stdout) == {}


@pytest.mark.parametrize(
    "args, words",
    [
        (["set", "api", "--rate", "10/x"], "rate '10/x' is not a rate"),
        (["set", "api", "--rate", "0/s"], "rate '0/s' is not a rate"),
        (["set", "api", "--concurrency", "0"], "concurrency must be a whole number from 1"),
        (["set", "api", "--concurrency", "-3"], "concurrency must be a whole number from 1"),
        (["set", "api", "--concurrency", "nan"], "'nan' is not a whole number"),
        (["set", "api"], "needs a concurrency, a rate or both"),
        (["set", "bad name", "--concurrency", "1"], "limit name 'bad name' must be"),
        (["pause", "nope"], "no limit 'nope' in sqlite:///runs.db"),
        (["show", "nope"], "no limit 'nope' in sqlite:///runs.db"),
    ],
)
def test_bad_limit_commands_exit_2_in_one_line(flow, args, words, monkeypatch, capsys):
    from cascade_core.cli._main import main  # in this process: the same code, without a start-up each

    monkeypatch.chdir(flow)
    if args[0] != "set":
        assert main(["limits", "set", "other", "--concurrency", "1", *STORE[:2]]) == 0
    capsys.readouterr()
    assert main(["limits", *args, *STORE[:2]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_a_run_naming_an_unset_limit_exits_2_saying_how_to_set_it(flow):
    done = cli(flow, "run", "flow.py:unset", *STORE)
    assert done.returncode == 2
    assert "names limit 'nowhere', which is not set in sqlite:///runs.db" in done.stderr
    assert "cascade limits set nowhere --concurrency N" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "resources, words",
    [
        ("gpu", "write NAME=AMOUNT pairs"),
        ("gpu=x", "write NAME=AMOUNT pairs"),
        ("gpu=0", "resource 'gpu' must be a finite number greater than 0"),
        ("gpu=-1", "resource 'gpu' must be a finite number greater than 0"),
        ("gpu=inf", "resource 'gpu' must be a finite number greater than 0"),
        ("gpu=nan", "resource 'gpu' must be a finite number greater than 0"),
        ("cpu=2", "task 'flow.train' needs resource 'gpu', which the run does not have"),
    ],
)
def test_bad_resources_exit_2_in_one_line(flow, resources, words):
    done = cli(flow, "run", "flow.py:gpus", *STORE, "--resources", resources)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert calls(flow)["train"] == 0


def test_runs_show_prints_the_time_spent_waiting(flow):
    ok(flow, "limits", "set", "api", "--concurrency", "1", *STORE[:2])
    ok(flow, "run", "flow.py:pipeline", *STORE, "--run-id", "w", "--resources", "gpu=1", env={"FLOW_N": "3"})
    shown = ok(flow, "runs", "show", "w", *STORE[:2]).stdout
    line = next(line for line in shown.splitlines() if line.startswith("waited: "))
    waited = float(line.split()[1].rstrip("s"))
    assert waited >= 0.05 * (1 + 2) * 0.8 and "on resources" in line
    info = json.loads(ok(flow, "runs", "show", "w", "--json", *STORE[:2]).stdout)["info"]
    assert float(info["waited_limits_s"]) == waited


@pytest.mark.parametrize("store", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_pause_mid_run_stops_new_starts_and_resume_finishes_it(flow, store, request):
    uri = "sqlite:///runs.db" if store == "sqlite" else request.getfixturevalue("redis_uri")
    stores = ["--state", uri, "--cache", uri]
    ok(flow, "limits", "set", "api", "--concurrency", "2", *stores[:2])
    run = start(
        flow, "run", "flow.py:pipeline", *stores, FLOW_LOG=str(flow / "calls.log"), FLOW_N="12", FLOW_SLOW="0.2"
    )
    try:
        deadline = time.monotonic() + 30
        while calls(flow)["call"] < 2:
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.02)
        ok(flow, "limits", "pause", "api", *stores[:2])
        paused_at = time.time()
        time.sleep(1.5)
        ok(flow, "limits", "resume", "api", *stores[:2])
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    starts = [float(line) for line in (flow / "calls.log.starts").read_text().split()]
    assert not [t for t in starts if paused_at + 1.0 < t < paused_at + 1.5]  # none started while paused
    assert calls(flow)["call"] == 12  # nothing lost, nothing run twice
