"""Moments as run info, task records and the backends write them: ISO-8601 UTC with milliseconds."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def stamp(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds, as backends stamp ``created`` and ``updated``."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def parse_time(text: Any) -> datetime | None:
    """An ISO-8601 time as :func:`stamp` and the backends write it (``2026-11-30T14:20:01.123+00:00``);
    one without a zone is UTC; None for anything else."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
