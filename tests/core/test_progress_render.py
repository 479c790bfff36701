"""The progress line as cli/_progress renders it: tasks of other drivers counted as done, and a
terminal that reports 0 columns drawn at 80."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cascade_test_cli import STORE, write_flow

from cascade_core.cli._progress import LINES, LIVE, Progress, _columns


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    return write_flow(tmp_path)


def test_progress_counts_tasks_done_by_other_drivers_as_done():
    stream = io.StringIO()
    progress = Progress(stream, LINES, verbose=True)
    progress.cascade_run_started(run_id="shared", tasks=3)
    progress.cascade_task_started(task="flow.load", node_id="n1")
    progress.cascade_task_finished(task="flow.load", node_id="n1", duration=0.01, cached=False)
    progress.cascade_task_skipped(task="flow.load", reason="done by another driver")
    progress.cascade_task_skipped(task="flow.load", reason="done by another driver")
    assert progress.render().startswith("3/3 done  0 running  0 cached  0 resumed  0 failed  2 by other drivers  ")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "run shared: 3 tasks"
    assert lines[-1].endswith("] done     flow.load (by another driver)")


def test_a_terminal_reporting_0_columns_gets_an_80_column_progress_line():
    master, slave = pty.openpty()  # a new pseudo-terminal reports 0 x 0 until someone sets a size
    stream = os.fdopen(slave, "w")
    try:
        assert os.get_terminal_size(slave).columns == 0
        assert _columns(stream) == 80
        progress = Progress(stream, LIVE)
        progress.total = 1000
        progress.counts.update(done=500, running=12, cached=300, resumed=100, failed=3, skipped=2)
        line = progress.render()
        assert len(line) > 79
        progress.write_line("above")
        progress._draw_locked()
        stream.write("\n#end#\n")
        stream.flush()
        shown = b""
        while b"#end#" not in shown:  # the terminal may hand the bytes over in pieces
            assert select.select([master], [], [], 10)[0], shown
            shown += os.read(master, 4096)
    finally:
        stream.close()
        os.close(master)
    drawn = shown.decode().split("#end#")[0].rstrip("\r\n").rsplit("\r", 1)[1]  # the last redraw
    assert len(drawn) == 79  # one column spare, so that the line never wraps
    assert drawn == line[:79] or drawn.split("elapsed")[0] == line.split("elapsed")[0]


def test_cascade_run_on_a_0_column_terminal_shows_the_whole_counts_line(flow):
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE", "COLUMNS")}
    env["FLOW_LOG"] = str(flow / "calls.log")
    process = subprocess.Popen(
        [sys.executable, "-m", "cascade_core", "run", "flow.py:pipeline", *STORE, "--run-id", "tty"],
        cwd=flow,
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    stdout, _ = process.communicate(timeout=60)
    reader.join(timeout=10)
    os.close(master)
    screen = b"".join(chunks).decode().replace("\r\n", "\n")
    assert process.returncode == 0, screen
    assert stdout.startswith("run tty succeeded")
    final = screen.rstrip("\n").rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]
    # Cut at 20 characters this was "3/3 done  0 running ".
    assert final.startswith("3/3 done  0 running  0 cached  0 resumed  0 failed  elapsed "), screen
