"""The `cascade` command run as users run it, in a subprocess; imported by test files as
``cascade_test_cli`` (tests/conftest.py registers it: tests is no package under
--import-mode=importlib)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

STORE_VARIABLES = ("CASCADE_STATE", "CASCADE_CACHE")  # the caller's defaults must not leak in
STATE = "sqlite:///runs.db"  # relative to the command's working directory
STORE = ["--state", STATE, "--cache", STATE]

FLOW_HEAD = """
from __future__ import annotations

import os
import cascade_core as cs

fail = cs.Param("fail", default=False, type=bool)


def note(name):
    with open(os.environ["FLOW_LOG"], "a") as log:
        log.write(name + "\\n")
"""  # what a flow of these tests starts with: note() logs a call for calls() to count

# The example flow of the CLI tests: loads (cached), a check that fails on --param fail=true,
# function targets that take parameters, one-task targets.
FLOW = (
    FLOW_HEAD
    + """
@cs.task(cache=True)
def load(i: int) -> int:
    note("load")
    return i * 10


@cs.task
def check(values: list, fail: bool, label: str) -> str:
    note("check")
    if fail:
        raise ValueError("values look wrong")
    return f"{label}={sum(values)}"


@cs.task
def explode() -> int:
    note("explode")
    raise RuntimeError("boom")


def pipeline():
    return check([load(i) for i in range(2)], fail, "sum")


def sized(n: int, label: str = "sum", loud: bool = False, scale: float = 1.0, limit: int | None = None):
    values = [load(i) for i in range(n if limit is None else min(n, limit))]
    return check(values, fail, f"{label.upper() if loud else label}*{scale}")


def listy(values: list[int] = [1]):
    return check([load(i) for i in values], fail, "list")


def single():
    return load(7)


def failing():
    return explode()
"""
)


def write_flow(directory: Path, text: str = FLOW) -> Path:
    """``directory/flow.py`` holding ``text`` (the example flow by default); returns ``directory``."""
    (directory / "flow.py").write_text(text)
    return directory


def cli(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    unset: Iterable[str] = STORE_VARIABLES,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """``python -m cascade_core ARGS`` in ``cwd``, output captured; flows log their calls to
    ``cwd/calls.log`` (``FLOW_LOG``). ``unset`` names the variables removed, ``env`` those set."""
    full = {name: value for name, value in os.environ.items() if name not in set(unset)}
    full["FLOW_LOG"] = str(cwd / "calls.log")
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=text,
        timeout=timeout,
    )


def start(cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """``python -m cascade_core ARGS`` in ``cwd``, started, not awaited: for tests that signal or
    kill it. ``env`` is added to this process's environment as it is."""
    return subprocess.Popen(
        [sys.executable, "-m", "cascade_core", *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ok(cwd: Path, *args: str, **options) -> subprocess.CompletedProcess:
    """``cli()`` that must exit 0."""
    done = cli(cwd, *args, **options)
    assert done.returncode == 0, done.stderr
    return done


def calls(cwd: Path) -> Counter[str]:
    """How many times each task of the flow ran, from ``cwd/calls.log``."""
    log = cwd / "calls.log"
    return Counter(log.read_text().split()) if log.exists() else Counter()


def interrupt_after(proc: subprocess.Popen[str], cwd: Path, name: str, count: int = 1) -> tuple[str, float]:
    """Send Ctrl-C to ``proc`` once the flow's task ``name`` has started ``count`` times; return its
    stderr and the seconds it took to exit after the signal. It is killed if it outlives the test."""
    import signal
    import time

    try:
        deadline = time.monotonic() + 30
        while calls(cwd)[name] < count:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        return err, time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            proc.kill()
