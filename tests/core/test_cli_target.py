"""Function targets (cli/_target): their parameters filled from ``--param`` and converted, beside
graph params; a bad parameter is one line naming it, and nothing runs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from cascade_test_cli import STORE, calls, cli, ok, write_flow


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    return write_flow(tmp_path)


def test_function_parameters_are_filled_from_param_and_converted(flow):
    report = json.loads(
        ok(flow, "run", "flow.py:sized", *STORE, "-p", "n=3", "-p", "label=tot", "-p", "loud=yes", "--json").stdout
    )
    assert report["result"] == "TOT*1.0=30" and report["counts"]["executed"] == 4
    assert calls(flow) == {"load": 3, "check": 1}
    report = json.loads(ok(flow, "run", "flow.py:sized", *STORE, "-p", "n=5", "-p", "scale=2.5", "--json").stdout)
    assert report["result"] == "sum*2.5=100" and report["counts"]["cached"] == 3
    assert calls(flow)["load"] == 5
    report = json.loads(ok(flow, "run", "flow.py:sized", *STORE, "-p", "n=5", "-p", "limit=2", "--json").stdout)
    assert report["result"] == "sum*1.0=10"
    # A task itself is a function returning a lazy result: its parameters fill the same way.
    assert json.loads(ok(flow, "run", "flow.py:load", *STORE, "-p", "i=4", "--json").stdout)["result"] == 40


def test_graph_params_still_work_beside_function_parameters_and_resume_repeats_both(flow):
    done = cli(flow, "run", "flow.py:sized", *STORE, "-p", "n=2", "-p", "fail=true", "--run-id", "mix")
    assert done.returncode == 1
    assert "to resume: cascade run flow.py:sized --param n=2 --param fail=true " in done.stderr
    assert calls(flow) == {"load": 2, "check": 1}
    done = ok(flow, "run", "flow.py:sized", *STORE, "-p", "n=2", "-p", "fail=false", "--run-id", "mix", "--json")
    report = json.loads(done.stdout)
    assert report["result"] == "sum*1.0=10" and report["counts"]["resumed"] == 2
    assert calls(flow) == {"load": 2, "check": 2}


@pytest.mark.parametrize(
    ("target", "params", "message"),
    [
        (
            "sized",
            ["n=eight"],
            "param 'n' expects int, and 'eight' does not convert: invalid literal for int() with base 10: 'eight'",
        ),
        ("sized", ["n=2", "loud=perhaps"], "param 'loud' expects bool, and 'perhaps' does not convert: "),
        ("sized", ["n=2", "limit=1.5"], "param 'limit' expects int, and '1.5' does not convert: "),
        ("sized", [], "calling flow.py:sized() needs its parameter 'n': pass --param n=VALUE"),
        (
            "listy",
            ["values=1,2"],
            "parameter 'values' of flow.py:listy is annotated list[int]: --param converts only to int, float, "
            "bool or str; give the function a parameter of one of these types",
        ),
        ("sized", ["n=2", "colour=red"], "unknown param 'colour'; this graph's params are: fail"),
    ],
)
def test_a_bad_function_parameter_is_one_line_naming_it_and_runs_nothing(flow, target, params, message):
    args = [arg for param in params for arg in ("-p", param)]
    done = cli(flow, "run", f"flow.py:{target}", *STORE, *args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {message}") and done.stderr.count("\n") == 1, done.stderr
    assert calls(flow) == Counter()
