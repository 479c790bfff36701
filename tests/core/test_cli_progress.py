"""The live progress line of ``cascade run`` in a real terminal (a tmux pane).

Skipped without tmux (CI installs it: see .ci/run).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux for a real terminal")

SLOW_FLOW = """
import time
import cascade_core as cs


@cs.task
def step(i: int) -> int:
    time.sleep(0.3)
    return i


@cs.task(retries=1)
def total(values: list) -> int:
    return sum(values)


def pipeline():
    return total([step(i) for i in range(8)])
"""


class Pane:
    """A detached tmux session of its own (own socket: never touches the user's tmux server)."""

    def __init__(self, directory: Path) -> None:
        self.socket = str(directory / f"tmux-{uuid.uuid4().hex[:8]}")
        self.name = "cascade-test"

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, command: str, cwd: Path, *, width: int = 120, term: str = "xterm") -> None:
        env = " ".join(
            f"{name}={shlex.quote(value)}" for name, value in os.environ.items() if name in ("PATH", "PYTHONPATH")
        )
        shell = f"cd {shlex.quote(str(cwd))} && env {env} TERM={term} {command}; echo EXIT=$?; sleep 30"
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", "30", shell)

    def capture(self, *, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.name)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.capture()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; screen:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def pane(tmp_path: Path):
    pane = Pane(tmp_path)
    yield pane
    pane.close()


def test_a_live_line_is_redrawn_during_the_run_and_the_summary_follows(tmp_path, pane):
    (tmp_path / "slow.py").write_text(SLOW_FLOW)
    command = shlex.join(
        [sys.executable, "-m", "cascade_core", "run", "slow.py:pipeline", "--workers", "2", "--run-id", "live-1"]
        + ["--state", "sqlite:///live.db", "--cache", "sqlite:///live.db"]
    )
    pane.start(command, tmp_path)
    pane.wait_for("run live-1: 9 tasks")
    # Mid-run: the live line shows partial counts (8 steps of 0.3 s on 2 workers take 1.2 s).
    screen = pane.wait_for(" running ")
    live = [line for line in screen.splitlines() if "elapsed" in line]
    assert len(live) == 1, screen
    assert "/9 done" in live[0] and "cached" in live[0] and "resumed" in live[0] and "failed" in live[0]
    assert not live[0].startswith("9/9"), screen

    screen = pane.wait_for("EXIT=")
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert lines[0] == "run live-1: 9 tasks"
    assert lines[1].startswith("9/9 done  0 running  0 cached  0 resumed  0 failed  elapsed ")
    assert lines[2].startswith("run live-1 succeeded in ") and "(9 executed)" in lines[2]
    assert lines[3] == "result: 28"
    assert lines[4] == "EXIT=0"
    assert "Traceback" not in screen
    # Nothing left of the redrawing: no stray escape sequences or carriage-return debris.
    raw = pane.capture(escapes=True)
    assert "\x1b[2K" not in raw and "\r" not in raw
    assert "started" not in screen  # event lines are for pipes, not for a terminal


def test_a_live_failure_is_reported_once_with_its_resume_command(tmp_path, pane):
    (tmp_path / "slow.py").write_text(SLOW_FLOW.replace("return sum(values)", "raise ValueError('no sum today')"))
    command = shlex.join(
        [sys.executable, "-m", "cascade_core", "run", "slow.py:pipeline", "--workers", "4", "--run-id", "live-2"]
        + ["--state", "sqlite:///live.db", "--cache", "sqlite:///live.db"]
    )
    pane.start(command, tmp_path)
    screen = pane.wait_for("EXIT=")
    assert "EXIT=1" in screen
    assert "warning: task slow.total failed (attempt 1 of 2): ValueError: no sum today" in screen
    assert screen.count("error: task 'slow.total' failed: ValueError: no sum today") == 1
    assert "8/9 done  0 running  0 cached  0 resumed  1 failed" in screen
    assert "to resume: " in screen and "--run-id live-2" in screen
    assert "Traceback" not in screen


FAN_FLOW = """
import cascade_core as cs


@cs.task(retries=1)
def part(i: int) -> int:
    if i == 999:
        raise KeyError("part 999 is missing")
    return i


@cs.task
def joined(parts: list) -> int:
    return len(parts)


pipeline = joined([part(i) for i in range(2000)])
"""


def test_a_2001_task_fan_out_on_a_terminal_keeps_the_live_line_and_names_the_retry_and_failure(tmp_path, pane):
    (tmp_path / "fan.py").write_text(FAN_FLOW)
    command = shlex.join([sys.executable, "-m", "cascade_core", "run", "fan.py:pipeline", "--run-id", "fan-tty"])
    pane.start(command + " --state sqlite:///fan.db --cache sqlite:///fan.db", tmp_path)
    screen = pane.wait_for("EXIT=")
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert lines[0] == "run fan-tty: 2001 tasks"
    assert lines[1].startswith("warning: task fan.part failed (attempt 1 of 2): KeyError: 'part 999 is missing'")
    assert lines[2].startswith("1999/2001 done  0 running  0 cached  0 resumed  1 failed  1 skipped  elapsed ")
    assert lines[3].startswith("run fan-tty failed in ") and "(1999 executed, 1 failed, 1 skipped)" in lines[3]
    assert lines[4] == "error: task 'fan.part' failed: KeyError: 'part 999 is missing'"
    assert lines[5].startswith("to resume: ") and lines[5].endswith("--run-id fan-tty")
    assert lines[6:] == ["EXIT=1"]


def test_verbose_on_a_terminal_prints_each_event_above_the_live_line(tmp_path, pane):
    (tmp_path / "slow.py").write_text(SLOW_FLOW)
    command = shlex.join(
        [sys.executable, "-m", "cascade_core", "run", "slow.py:pipeline", "-v", "--workers", "4", "--run-id", "live-v"]
        + ["--state", "sqlite:///live.db", "--cache", "sqlite:///live.db"]
    )
    pane.start(command, tmp_path)
    screen = pane.wait_for("EXIT=")
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert lines[0] == "run live-v: 9 tasks"
    events = lines[1:19]
    assert sum("] started  slow.step" in line for line in events) == 8
    assert sum("] finished slow.step (" in line for line in events) == 8
    assert "] started  slow.total" in events[16] and "] finished slow.total (" in events[17]
    assert lines[19].startswith("9/9 done  0 running  0 cached  0 resumed  0 failed  elapsed ")
    assert lines[20].startswith("run live-v succeeded in ") and lines[21:] == ["result: 28", "EXIT=0"]
    raw = pane.capture(escapes=True)
    assert "\x1b[2K" not in raw and "\r" not in raw


def slow_run(directory: Path, run_id: str, *options: str) -> str:
    """The command line of a run of SLOW_FLOW (saved in ``directory``) on 2 workers."""
    (directory / "slow.py").write_text(SLOW_FLOW)
    words = [sys.executable, "-m", "cascade_core", "run", "slow.py:pipeline", "--workers", "2", "--run-id", run_id]
    return shlex.join(words + ["--state", "sqlite:///live.db", "--cache", "sqlite:///live.db", *options])


def test_on_a_narrow_terminal_the_live_line_is_cut_to_its_width_and_never_wraps(tmp_path, pane):
    command = slow_run(tmp_path, "narrow")
    pane.start(command, tmp_path, width=30)
    screen = pane.wait_for(" running")
    live = [line.rstrip() for line in screen.splitlines() if "/9 done" in line]
    assert len(live) == 1 and len(live[0]) <= 29, screen
    screen = pane.wait_for("EXIT=")
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    # The full line is 60-odd characters: cut, it is one screen line, not a wrapped pair.
    assert lines[1] == "9/9 done  0 running  0 cached", screen
    assert lines[2].startswith("run narrow succeeded in "), screen
    raw = pane.capture(escapes=True)
    assert "\x1b[2K" not in raw and "\r" not in raw


def test_a_dumb_terminal_gets_plain_count_lines_instead_of_a_redrawn_line(tmp_path, pane):
    command = slow_run(tmp_path, "dumb", "--progress-interval", "0.4")
    pane.start(command, tmp_path, term="dumb")
    screen = pane.wait_for("EXIT=")
    counts = [line for line in screen.splitlines() if "/9 done" in line]
    # Lines mode: a counts line every 0.4 s while it runs (about 1.2 s), each kept, then the last.
    assert len(counts) >= 2 and counts[-1].startswith("9/9 done  0 running"), screen
    assert "EXIT=0" in screen
