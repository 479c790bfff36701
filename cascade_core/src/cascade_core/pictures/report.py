"""The HTML report of one run: one self-contained file (inline CSS and SVG, no script, nothing fetched).

Everything from the run (task names, errors, reasons) is user data and is escaped; the page's
Content-Security-Policy forbids every load besides its own inline styles, so even a mistake in
escaping could not reach the network.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import escape

from .._errors import UsageError
from .graph_model import SHORT_ID, Picture, size_text
from .palette import STYLES
from .run_view import RunView, TaskRecord
from .timeline import timeline_html

MAX_ROWS = 2000  # task table rows; failures come first
MAX_DRAWN = 2000  # nodes that dot is asked to lay out
_COUNT_ORDER = ("total", "executed", "cached", "resumed", "by_other_drivers", "failed", "skipped")
_RUN_STATUS = {"succeeded": "executed", "failed": "failed", "running": "cached"}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_RESUMABLE = ("failed", "crashed", "interrupted", "abandoned")
# TaskFailed's own advice, in Python's words: the report gives the command instead.
_PYTHON_HINT = re.compile(r" \(fix it and rerun with run_id=.* to resume\)$", re.DOTALL)

CSS = """
:root{--name:15em;font-family:"DejaVu Sans",Arial,sans-serif;font-size:14px;color:#111;background:#fff}
body{margin:1.5em auto;max-width:1200px;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .4em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ccc}
code{font-family:"DejaVu Sans Mono",monospace;font-size:.95em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}
dl.facts dt{font-weight:bold}dl.facts dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:.1em .5em;border-radius:.3em;font-size:.8em;vertical-align:middle;
  border:1px solid #333}
.failure{background:#fbe3d6;border-left:4px solid #D55E00;padding:.5em .8em;margin-top:.8em;white-space:pre-wrap;
  overflow-wrap:anywhere}
.legend{display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin:.4em 0 .8em;font-size:.9em}
.swatch{display:inline-block;width:1.1em;height:.9em;margin-right:.3em;vertical-align:middle;border:1px solid #333}
.timeline{position:relative;font-size:.85em}
.row{display:flex;align-items:center;height:1.35em}
.row .name{flex:0 0 var(--name);overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding-right:.5em}
.track{position:relative;flex:1 1 auto;height:100%;margin-right:6px;background:#f4f4f4;border-left:1px solid #999}
.bar,.retry{position:absolute;top:12%;height:76%;min-width:1.1em;box-sizing:border-box;border:1px solid #333;
  display:flex;align-items:center;justify-content:center;overflow:hidden;font-size:.8em;line-height:1}
.retry,.retry-key{background:repeating-linear-gradient(135deg,#F7C5A8 0 3px,#fff 3px 6px);border:1px dashed #D55E00}
.axis .track{background:none;border-bottom:1px solid #999}
.tick{position:absolute;top:0;transform:translateX(-50%);font-size:.85em;color:#444;white-space:nowrap}
.tick:first-child{transform:none}.tick:last-child{transform:translateX(-100%)}
.overlay{position:absolute;left:var(--name);right:6px;top:0;bottom:0;pointer-events:none}
.attempt{position:absolute;top:0;bottom:0;border-left:2px dashed #000}
.graph{overflow:auto;border:1px solid #ddd;padding:.5em}.graph svg{max-width:100%;height:auto}
pre.mermaid-source{background:#f7f7f7;padding:.8em;overflow:auto;max-height:30em}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid #e3e3e3;vertical-align:top}
td.why{white-space:pre-wrap;overflow-wrap:anywhere;min-width:20em}td.num,td.nowrap{text-align:right;white-space:nowrap}
td.nowrap{text-align:left}
.note{color:#444;font-size:.9em}
.resume{margin:.5em 0 0;white-space:normal}.resume code{overflow-wrap:anywhere}
"""


def _status_css() -> str:
    rules = []
    for status, style in STYLES.items():
        border = {"bold": "border-width:2px", "dashed": "border-style:dashed", "dotted": "border-style:dotted"}
        extra = border.get(style.border, "")
        rules.append(f".s-{status}{{background:{style.fill};color:{style.text};{extra}}}")
    return "\n".join(rules)


def report_html(run: RunView, picture: Picture, *, collapse: int | None, version: str = "") -> str:
    """The whole page as text."""
    info = run.info
    status = str(info.get("status") or "unknown")
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Cascade run {escape(run.run_id)}: {escape(status)}</title>",
            f"<style>{CSS}{_status_css()}</style></head><body>",
            _header(run, status),
            '<section id="timeline"><h2>Timeline</h2>',
            timeline_html(run, collapse),
            "</section>",
            '<section id="graph"><h2>Graph</h2>',
            _graph(picture),
            "</section>",
            _dynamic(run),
            '<section id="tasks"><h2>Tasks</h2>',
            _table(run),
            "</section>",
            f'<footer class="note"><p>Made by cascade-core {escape(version)} at {escape(made)}.</p></footer>',
            "</body></html>",
        ]
    )


def _header(run: RunView, status: str) -> str:
    info = run.info
    badge = _RUN_STATUS.get(status, "not_reached")
    facts = [("target", info.get("target")), ("tasks", info.get("tasks"))]
    counts = {key[len("count_") :]: value for key, value in info.items() if key.startswith("count_")}
    ordered = sorted(counts, key=lambda name: (_COUNT_ORDER.index(name) if name in _COUNT_ORDER else 99, name))
    shown = ", ".join(
        f"{counts[name]} {name.replace('_', ' ')}" for name in ordered if name != "total" and _nonzero(counts[name])
    )
    facts += [("counts", shown), ("created", info.get("created")), ("updated", info.get("updated"))]
    facts += [("driver", info.get("driver")), ("last attempt started", info.get("driver_started"))]
    if info.get("failed_task"):
        facts.append(("failed task", info.get("failed_task")))
    rows = "".join(f"<dt>{escape(name)}</dt><dd>{escape(str(value))}</dd>" for name, value in facts if value)
    failure = ""
    if info.get("error") or status in _RESUMABLE:
        error = _PYTHON_HINT.sub("", str(info.get("error") or ""))  # the resume line below says it for both
        failure = (
            f'<div class="failure">{escape(error)}'
            f'<p class="resume">To resume: <code>{escape(resume_hint(run))}</code></p></div>'
        )
    return (
        f'<header><h1>Run <code>{escape(run.run_id)}</code> <span class="badge s-{badge}">{escape(status)}</span></h1>'
        f'<dl class="facts">{rows}</dl>{failure}</header>'
    )


def resume_hint(run: RunView) -> str:
    """How to resume the run: the ``cascade run`` command it was started with, else the Python call."""
    command = str(run.info.get("resume_command") or "")
    if command:
        return command
    return f"cascade_core.run(TARGET, run_id={run.run_id!r}, state_backend=...)  # the same target and stores"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _nonzero(value: object) -> bool:
    return str(value).strip() not in ("", "0")


def _graph(picture: Picture) -> str:
    from .dot import dot_program, render, to_dot
    from .mermaid import to_mermaid

    note = ""
    if not picture.edges_known:
        note = (
            f'<p class="note">{escape(_sentence(picture.edges_note()))}: give the run\'s target '
            "(<code>--target PATH_OR_MODULE:TARGET</code> and its <code>--param</code> values) to draw them.</p>"
        )
    if picture.collapsed:
        note += f'<p class="note">{picture.calls} task calls, collapsed into {len(picture.nodes)} nodes.</p>'
    reason = ""
    if dot_program() is None:
        reason = (
            "Graphviz's <code>dot</code> program is not installed, so the graph is shown as Mermaid source "
            "(paste it into a Markdown file on GitHub or into mermaid.live to see it): install Graphviz "
            "(<code>apt-get install graphviz</code>, <code>brew install graphviz</code>) to draw it here."
        )
    elif len(picture.nodes) > MAX_DRAWN:
        reason = f"{len(picture.nodes)} nodes are too many to lay out: collapse the graph (--collapse N)."
    else:
        try:
            svg = render(to_dot(picture, explain=False), "svg").decode()
            return f'{note}<div class="graph">{svg[svg.find("<svg") :]}</div>'
        except UsageError as exc:
            reason = escape(str(exc))
    source = escape(to_mermaid(picture, explain=False))
    return f'{note}<p class="note hint">{reason}</p><pre class="mermaid-source">{source}</pre>'


def _dynamic(run: RunView) -> str:
    """Maps, routers and skipped nodes, as ``cascade runs show`` prints them below its table ("" if none)."""
    from .summary import dynamic_summary, summary_lines

    lines = summary_lines(dynamic_summary(run))
    if not lines:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f'<section id="dynamic"><h2>Maps, routers and skips</h2><ul>{items}</ul></section>'


def _table(run: RunView) -> str:
    records = run.ordered()
    rank = {"failed": 0, "skipped": 1}
    records.sort(key=lambda record: rank.get(record.status, 2))  # stable: failures first, then by time
    shown = records[:MAX_ROWS]
    rows = "".join(_row(record) for record in shown)
    more = ""
    if len(records) > len(shown):
        more = (
            f'<p class="note">The first {len(shown)} of {len(records)} tasks; '
            f"<code>cascade runs show {escape(run.run_id)} --json</code> lists them all.</p>"
        )
    return (
        "<table><thead><tr><th>task</th><th>node</th><th>status</th><th>finished (UTC)</th><th>duration</th>"
        f"<th>size</th><th>error or reason</th></tr></thead><tbody>{rows}</tbody></table>{more}"
    )


def _row(record: TaskRecord) -> str:
    style = STYLES[record.status]
    status = f"{style.symbol} {record.status.replace('_', ' ')}".strip()
    if record.attempts > 1:
        status += f" ({record.attempts} attempts)"
    why = [record.text or ""] if record.text or not record.failed_attempts else []
    why += [f"attempt {n} failed: {attempt.error or '?'}" for n, attempt in enumerate(record.failed_attempts, 1)]
    finished = ""
    if record.finished is not None:  # UTC, as the header's times
        at = record.finished.astimezone(timezone.utc)
        finished = f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d}"
    duration = f"{record.duration:.3f}s" if record.duration is not None else ""
    return (
        f'<tr class="task"><td>{escape(record.task)}</td><td><code title="{escape(record.node_id)}">'
        f"{escape(record.node_id[:SHORT_ID])}</code></td>"
        f'<td class="nowrap"><span class="swatch s-{record.status}"></span>{escape(status)}</td>'
        f'<td class="nowrap">{escape(finished)}</td>'
        f'<td class="num">{duration}</td><td class="num">{size_text(record.size)}</td>'
        f'<td class="why">{escape(chr(10).join(why))}</td></tr>'
    )
