"""How the CLI shows the engine's log records and Python warnings: one short line each, on stderr.

The engine logs to the ``cascade`` logger (retries at WARNING, task failures at ERROR). The
CLI reports task failures itself (progress events and the final summary), so the engine's
per-task failure record is dropped here: a failure is printed once, not three times.
Everything else at WARNING and above (DEBUG with ``--debug``) is shown as ``warning: ...``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LOGGER = "cascade"


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().strip().splitlines()
        line = text[0] if text else ""
        return f"{record.levelname.lower()}: {line}"


def _is_task_failure(record: logging.LogRecord) -> bool:
    """The engine's "task X failed in run R" record, which the CLI reports in its own words."""
    if getattr(record, "cascade_event", None) == "task_failed":
        return True
    return record.levelno >= logging.ERROR and str(record.msg).startswith("task %s failed in run")


class CliHandler(logging.Handler):
    """Writes formatted records through ``sink`` (the live progress display, when there is one)."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.setFormatter(_Formatter())
        self.addFilter(lambda record: not _is_task_failure(record))
        self.sink: Callable[[str], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if self.sink is not None:
                self.sink(text)
            else:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
        except Exception:
            self.handleError(record)


@contextmanager
def cli_logging(debug: bool) -> Iterator[CliHandler]:
    """Route the ``cascade`` logger and Python warnings to one-line messages while a command runs."""
    logger = logging.getLogger(LOGGER)
    saved = logger.level, logger.propagate, list(logger.handlers)
    handler = CliHandler(logging.DEBUG if debug else logging.WARNING)
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False  # the CLI owns presentation; a workflow's basicConfig must not double it
    saved_showwarning = warnings.showwarning

    def showwarning(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        text = str(message).strip().splitlines()
        where = f" ({filename}:{lineno})" if debug else ""
        handler.handle(
            logging.LogRecord(LOGGER, logging.WARNING, filename, lineno, (text[0] if text else "") + where, None, None)
        )

    warnings.showwarning = showwarning
    try:
        yield handler
    finally:
        warnings.showwarning = saved_showwarning
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers = saved[2]
