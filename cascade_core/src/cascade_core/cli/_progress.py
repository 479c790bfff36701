"""Live progress for ``cascade run``: one redrawn line on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from .._events import hookimpl  # type: ignore[attr-defined]


class Progress:
    """A pluggy observer that counts task outcomes and shows them."""

    def __init__(self, stream: Any, live: bool) -> None:
        self.stream = stream
        self.live = live
        self.total = 0
        self.counts = {"done": 0, "running": 0, "cached": 0, "resumed": 0, "failed": 0, "skipped": 0}
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @hookimpl
    def cascade_run_started(self, run_id: str, tasks: int) -> None:
        self.total = tasks
        self.started = time.monotonic()
        self._write_line(f"run {run_id}: {tasks} tasks")
        if self.live:
            self._ticker = threading.Thread(target=self._tick, name="cascade-progress", daemon=True)
            self._ticker.start()

    @hookimpl
    def cascade_task_started(self, task: str) -> None:
        self._bump("running", 1)
        if not self.live:
            self._write_line(f"started  {task}")

    @hookimpl
    def cascade_task_finished(self, task: str, duration: float, cached: bool) -> None:
        with self._lock:
            self.counts["done"] += 1
            if cached:
                self.counts["cached"] += 1
            else:
                self.counts["running"] -= 1
        if not self.live:
            self._write_line(f"{'cached  ' if cached else 'finished'} {task} ({duration:.3f}s)")

    @hookimpl
    def cascade_task_skipped(self, task: str, reason: str) -> None:
        self._bump("resumed" if reason == "resumed" else "skipped", 1)
        if not self.live and reason != "resumed":
            self._write_line(f"skipped  {task}: {reason}")

    @hookimpl
    def cascade_task_failed(self, task: str, error: BaseException) -> None:
        with self._lock:
            self.counts["failed"] += 1
            self.counts["running"] -= 1
        if not self.live:
            self._write_line(
                f"failed   {task}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            )

    def _bump(self, name: str, amount: int) -> None:
        with self._lock:
            self.counts[name] += amount

    def render(self) -> str:
        c = self.counts
        elapsed = time.monotonic() - self.started
        finished = c["done"] + c["resumed"]
        return (
            f"{finished}/{self.total} done  {c['running']} running  {c['cached']} cached  "
            f"{c['resumed']} resumed  {c['failed']} failed  {elapsed:6.1f}s"
        )

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            self._draw()

    def _draw(self) -> None:
        self.stream.write("\r\x1b[2K" + self.render())
        self.stream.flush()

    def _write_line(self, text: str) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K" + text + "\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def make_progress(enabled: bool) -> Progress | None:
    """A live line on a terminal (stderr), plain lines when stderr is not a terminal."""
    if not enabled:
        return None
    stream = sys.stderr
    return Progress(stream, live=stream.isatty())
