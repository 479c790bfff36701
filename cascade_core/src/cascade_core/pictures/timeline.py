"""The HTML timeline of a run: one bar per task over the run's wall-clock, or one per task name when large."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import NamedTuple

from .._times import parse_time
from .graph_model import SHORT_ID
from .palette import STYLES, describe_counts, group_status
from .run_view import RunView, TaskRecord, short_name

MIN_WIDTH = "1.1em"  # of a bar, however short its task: a cache hit takes no time, a failure little


class Bar(NamedTuple):
    label: str
    start: datetime
    end: datetime
    status: str
    title: str
    tries: tuple[tuple[datetime, datetime, str], ...] = ()  # failed attempts before it: start, end, title


def bars(run: RunView, collapse: int | None) -> tuple[list[Bar], int]:
    """The bars to draw, by start time, and how many records had no time (not drawn)."""
    timed = [record for record in run.records.values() if record.finished is not None]
    untimed = len(run.records) - len(timed)
    if collapse is None or len(timed) <= collapse:
        out = [_one(record) for record in timed]
    else:
        groups: dict[str, list[TaskRecord]] = {}
        for record in timed:
            groups.setdefault(record.task, []).append(record)
        out = [_group(task, records) for task, records in groups.items()]
    out.sort(key=lambda bar: (_first(bar), bar.end, bar.label))
    return out, untimed


def _one(record: TaskRecord) -> Bar:
    assert record.finished is not None and record.started is not None
    duration = f"{record.duration:.3f}s" if record.duration is not None else "?"
    title = f"{record.task} [{record.node_id}]: {record.status.replace('_', ' ')}, {duration}"
    if record.attempts > 1:
        title += f", attempt {record.attempts} of {record.attempts}"
    if record.text:
        title += f": {record.text}"
    name = short_name(record.task)
    label = f"{name} · {record.node_id[:SHORT_ID]}"
    tries = []
    for number, attempt in enumerate(record.failed_attempts, 1):
        if attempt.finished is not None and attempt.started is not None:
            took = f"{attempt.duration:.3f}s" if attempt.duration is not None else "?"
            tries.append(
                (attempt.started, attempt.finished, f"{label}: attempt {number} failed, {took}: {attempt.error}")
            )
    if record.attempts > 1:
        label += f" ↻{record.attempts}"
    return Bar(label, record.started, record.finished, record.status, title, tuple(tries))


def _first(bar: Bar) -> datetime:
    """When the bar's row starts: its first attempt."""
    return min([bar.start, *(start for start, _, _ in bar.tries)])


def _span(start: datetime, end: datetime, first: datetime, span: float) -> str:
    """The CSS position of one bar; a short one keeps a visible width and stays inside its track."""
    left = (start - first).total_seconds() / span * 100
    width = (end - start).total_seconds() / span * 100
    return f"left:min({left:.3f}%,calc(100% - {MIN_WIDTH}));width:{width:.3f}%"


def _group(task: str, records: list[TaskRecord]) -> Bar:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    start = min(record.started for record in records if record.started is not None)
    end = max(record.finished for record in records if record.finished is not None)
    name = short_name(task)
    title = f"{task}: {len(records)} calls, {describe_counts(counts)}"
    retried = sum(1 for record in records if record.failed_attempts)
    if retried:
        title += f", {retried} retried ({sum(len(record.failed_attempts) for record in records)} failed attempts)"
    return Bar(f"{name} ×{len(records)}", start, end, group_status(counts), title)


def timeline_html(run: RunView, collapse: int | None) -> str:
    """A ``<div class="timeline">`` with one ``.bar`` per drawn bar, positioned in percent of the run's span."""
    drawn, untimed = bars(run, collapse)
    if not drawn:
        return '<p class="note">This run has no task records with times, so there is no timeline.</p>'
    first = min(map(_first, drawn))
    last = max(bar.end for bar in drawn)
    span = max((last - first).total_seconds(), 0.001)
    rows = []
    failed = STYLES["failed"].symbol
    for bar in drawn:
        tries = "".join(
            f'<span class="retry" style="{_span(start, end, first, span)}" title="{escape(title)}">{failed}</span>'
            for start, end, title in bar.tries
        )
        place = _span(bar.start, bar.end, first, span)
        rows.append(
            f'<div class="row"><span class="name" title="{escape(bar.title)}">{escape(bar.label)}</span>'
            f'<span class="track">{tries}<span class="bar s-{bar.status}" style="{place}" '
            f'title="{escape(bar.title)}">{escape(STYLES[bar.status].symbol)}</span></span></div>'
        )
    axis = "".join(
        f'<span class="tick" style="left:{share * 25}%">+{_duration(span * share / 4, span)}</span>'
        for share in range(5)
    )
    attempt = parse_time(run.info.get("driver_started"))
    marker = ""
    if attempt is not None and first < attempt < last:
        at = (attempt - first).total_seconds() / span * 100
        marker = (
            f'<div class="overlay"><span class="attempt" style="left:{at:.3f}%" '
            'title="the last attempt started here"></span></div>'
        )
    note = f'<p class="note">{untimed} task record(s) without a time are not drawn.</p>' if untimed else ""
    if any(bar.tries for bar in drawn):
        note += (
            f'<p class="note"><span class="swatch retry-key"></span>{failed} a failed attempt that was retried '
            "(↻N after a task's name: it took N attempts).</p>"
        )
    legend = "".join(
        f'<span class="key"><span class="swatch s-{status}"></span>{escape(STYLES[status].symbol)} '
        f"{escape(STYLES[status].legend)}</span>"
        for status in STYLES
        if any(bar.status == status for bar in drawn)
    )
    return (
        f'<div class="legend">{legend}</div>'
        f'<div class="timeline" data-bars="{len(drawn)}">'
        f'<div class="row axis"><span class="name" title="{escape(first.isoformat(timespec="milliseconds"))}">'
        f"from {first.strftime('%H:%M:%S')}.{first.microsecond // 1000:03d}</span>"
        f'<span class="track">{axis}</span></div>'
        f"{''.join(rows)}{marker}</div>{note}"
    )


def _duration(seconds: float, span: float) -> str:
    """A tick label in the unit that suits the whole span."""
    if span < 1:
        return f"{seconds * 1000:.3g} ms"
    if span < 120:
        return f"{seconds:.3g} s"
    if span < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"
