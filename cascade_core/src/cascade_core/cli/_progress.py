"""Progress of ``cascade run``: a redrawn line on a terminal, a few plain lines otherwise.

Modes: ``live`` (stderr is a terminal: one line redrawn), ``lines`` (stderr is a file or a
pipe, or ``TERM=dumb``: the counts every ``interval`` seconds and each failure, so that a
log's length does not grow with the number of tasks) and ``quiet`` (``--json`` or
``--no-progress``: nothing but warnings). ``verbose`` (``-v``) adds one line per task event
in the first two. In every mode the observer collects the failed tasks, which the final
summary reports.

Why hand-written and not rich or tqdm: the line is one string of counts, redrawn ten times a
second, and this module is all it takes. rich would add a dependency and about 100 ms of
imports to every ``cascade run``; tqdm draws a bar per iterable, not counts of a graph. What
they would bring is handled here: the line is cut to the terminal's width, read at every
redraw (a wrapped line could not be redrawn); it is redrawn with a carriage return and
spaces only, no escape sequence, so a Windows console without VT processing shows it as
well; it has no colour, so ``NO_COLOR`` needs nothing; and a terminal that cannot move the
cursor (``TERM=dumb``) gets the plain lines.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Any

from .._plugins.events import hookimpl  # type: ignore[attr-defined]
from ._output import plural

LIVE, LINES, QUIET = "live", "lines", "quiet"
PROGRESS_INTERVAL = 5.0  # seconds between two counts lines off a terminal (--progress-interval)
_REDRAW = 0.1  # seconds between two redraws of the live line

_BY_ANOTHER_DRIVER = "done by another driver"  # the engine's skip reason for a node another driver of the run stored


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``; never raises (a task's exception may not print)."""
    from .._masking import describe

    return describe(error)


class Progress:
    """A pluggy observer that counts task outcomes and shows them on ``stream``."""

    def __init__(self, stream: Any, mode: str, *, verbose: bool = False, interval: float = PROGRESS_INTERVAL) -> None:
        self.stream = stream
        self.mode = mode
        self.verbose = verbose and mode != QUIET
        self.interval = interval
        self.total = 0
        self.counts = {
            "done": 0,
            "running": 0,
            "cached": 0,
            "resumed": 0,
            "by_other_drivers": 0,
            "failed": 0,
            "skipped": 0,
        }
        self._running: set[str] = set()  # the node ids started and not yet finished
        self.failures: list[tuple[str, str]] = []  # (task, one-line cause), in the order they happened
        self.started = time.monotonic()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._drawn = False  # a live line is on screen (so a message must clear it first)

    # -- events (called from the engine's driver thread) -------------------------

    @hookimpl
    def cascade_run_started(self, run_id: str, tasks: int) -> None:
        self.total = tasks
        self.started = time.monotonic()
        if self.mode != QUIET:
            self.write_line(f"run {run_id}: {plural(tasks, 'task')}")
        if self.mode != QUIET:
            self._ticker = threading.Thread(target=self._tick, name="cascade-progress", daemon=True)
            self._ticker.start()

    @hookimpl
    def cascade_graph_grew(self, task: str, added: int, tasks: int) -> None:
        with self._lock:
            self.total = tasks
        self._event(f"expanded {task} into {plural(added, 'task')}")

    @hookimpl
    def cascade_task_started(self, task: str, node_id: str) -> None:
        with self._lock:
            self._running.add(node_id)
            self.counts["running"] = len(self._running)
        self._event(f"started  {task}")

    @hookimpl
    def cascade_task_finished(self, task: str, node_id: str, duration: float, cached: bool) -> None:
        with self._lock:
            self.counts["done"] += 1
            if cached:
                self.counts["cached"] += 1
            # By node id: a map's or router's node finishes without having started, a retry starts twice.
            self._running.discard(node_id)
            self.counts["running"] = len(self._running)
        self._event(f"cached   {task}" if cached else f"finished {task} ({duration:.3f}s)")

    @hookimpl
    def cascade_task_skipped(self, task: str, reason: str) -> None:
        kind = {"resumed": "resumed", _BY_ANOTHER_DRIVER: "by_other_drivers"}.get(reason, "skipped")
        with self._lock:
            self.counts[kind] += 1
        if kind == "resumed":
            self._event(f"resumed  {task}")
        elif kind == "by_other_drivers":
            self._event(f"done     {task} (by another driver)")
        else:
            self._event(f"skipped  {task}: {reason}")

    @hookimpl
    def cascade_task_failed(self, task: str, node_id: str, error: BaseException) -> None:
        cause = one_line(error)
        with self._lock:
            self.counts["failed"] += 1
            self._running.discard(node_id)
            self.counts["running"] = len(self._running)
            self.failures.append((task, cause))
        self._event(f"failed   {task}: {cause}", always=self.mode == LINES)

    # -- drawing ---------------------------------------------------------------

    def render(self) -> str:
        """``12/18 done  2 running  3 cached  1 resumed  0 failed  elapsed 1.3s``."""
        with self._lock:
            c = dict(self.counts)
        text = (
            f"{c['done'] + c['resumed'] + c['by_other_drivers']}/{self.total} done  {c['running']} running  "
            f"{c['cached']} cached  {c['resumed']} resumed  {c['failed']} failed"
        )
        if c["by_other_drivers"]:
            text += f"  {c['by_other_drivers']} by other drivers"
        if c["skipped"]:
            text += f"  {c['skipped']} skipped"
        return text + f"  elapsed {time.monotonic() - self.started:.1f}s"

    def _event(self, text: str, always: bool = False) -> None:
        if self.verbose or always:
            self.write_line(f"[{time.monotonic() - self.started:7.2f}s] {text}")

    def write_line(self, text: str) -> None:
        """Print a message; on a terminal above the live line, which is redrawn after it."""
        with self._lock:
            if self._drawn:
                self.stream.write("\r" + " " * self._width() + "\r")
            self.stream.write(text + "\n")
            if self._drawn:
                self._draw_locked()
            self.stream.flush()

    def _tick(self) -> None:
        if self.mode == LINES:
            while not self._stop.wait(self.interval):
                self.write_line(self.render())
            return
        while not self._stop.wait(_REDRAW):
            with self._lock:
                self._draw_locked()
                self.stream.flush()

    def _draw_locked(self) -> None:
        # Padded to the width, so that it covers a longer line drawn before; never wider than
        # the terminal (the last column too may wrap), since \r returns to a line's start only.
        width = self._width()
        self.stream.write("\r" + self.render()[:width].ljust(width))
        self._drawn = True

    def _width(self) -> int:
        return max(1, _columns(self.stream) - 1)

    def close(self) -> None:
        """Stop redrawing (or printing the counts); leave the final counts on their own line."""
        self._stop.set()
        if self._ticker is None:
            return
        self._ticker.join()
        self._ticker = None
        if self.mode == LINES:
            self.write_line(self.render())
            return
        with self._lock:
            self._draw_locked()
            self.stream.write("\n")
            self._drawn = False
            self.stream.flush()


def _columns(stream: Any) -> int:
    """The terminal's width; 80 when it reports none (0 columns: a serial console, some containers)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = shutil.get_terminal_size((80, 24)).columns
    return columns if columns > 0 else 80


def choose_mode(stream: Any, quiet: bool, environ: Any = None) -> str:
    """``quiet`` when asked; ``live`` on a terminal that can redraw a line; else ``lines``."""
    if quiet:
        return QUIET
    if (os.environ if environ is None else environ).get("TERM") == "dumb":
        return LINES
    try:
        return LIVE if stream.isatty() else LINES
    except (AttributeError, ValueError):  # a closed or unusual stream
        return LINES
