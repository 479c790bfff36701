"""The HTML timeline of a run: one bar per task over the run's wall-clock, or one per task name when large."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import NamedTuple

from .._records import parse_time
from .graph_model import SHORT_ID
from .palette import STYLES, describe_counts, group_status
from .run_view import RunView, TaskRecord


class Bar(NamedTuple):
    label: str
    start: datetime
    end: datetime
    status: str
    title: str


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
    out.sort(key=lambda bar: (bar.start, bar.end, bar.label))
    return out, untimed


def _one(record: TaskRecord) -> Bar:
    assert record.finished is not None and record.started is not None
    duration = f"{record.duration:.3f}s" if record.duration is not None else "?"
    title = f"{record.task} [{record.node_id}]: {record.status.replace('_', ' ')}, {duration}"
    if record.text:
        title += f": {record.text}"
    name = record.task.rpartition(".")[2] or record.task
    return Bar(f"{name} · {record.node_id[:SHORT_ID]}", record.started, record.finished, record.status, title)


def _group(task: str, records: list[TaskRecord]) -> Bar:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    start = min(record.started for record in records if record.started is not None)
    end = max(record.finished for record in records if record.finished is not None)
    name = task.rpartition(".")[2] or task
    title = f"{task}: {len(records)} calls, {describe_counts(counts)}"
    return Bar(f"{name} ×{len(records)}", start, end, group_status(counts), title)


def timeline_html(run: RunView, collapse: int | None) -> str:
    """A ``<div class="timeline">`` with one ``.bar`` per drawn bar, positioned in percent of the run's span."""
    drawn, untimed = bars(run, collapse)
    if not drawn:
        return '<p class="note">This run has no task records with times, so there is no timeline.</p>'
    first = min(bar.start for bar in drawn)
    last = max(bar.end for bar in drawn)
    span = max((last - first).total_seconds(), 0.001)
    rows = []
    for bar in drawn:
        left = (bar.start - first).total_seconds() / span * 100
        width = (bar.end - bar.start).total_seconds() / span * 100
        rows.append(
            f'<div class="row"><span class="name" title="{escape(bar.title)}">{escape(bar.label)}</span>'
            f'<span class="track"><span class="bar s-{bar.status}" style="left:{left:.3f}%;width:{width:.3f}%" '
            f'title="{escape(bar.title)}"></span></span></div>'
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
