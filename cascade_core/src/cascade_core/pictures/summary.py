"""What ``cascade runs show`` and the HTML report say of a run's dynamic parts: each map's
calls by outcome, each router's chosen and routed-away routes, and the skipped nodes by reason.

Read from the task records (``parent`` names the map or router a node was added by, ``kind``
marks maps and routers); records written before cascade-core kept them give no map lines.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .palette import STATUSES

_SHOWN = {"other_driver": "by other drivers", "not_reached": "not reached"}
SKIP_REASONS = 5  # distinct skip reasons listed; the rest are counted as "other"


def routed_away(record: Any) -> bool:
    """Whether a node is of a route its router did not choose (added to the run, skipped, by newer engines)."""
    return record.status == "skipped" and (record.text or "").startswith("routed away")


def dynamic_summary(run: Any) -> dict[str, Any]:
    """``maps``, ``routers`` and ``skipped`` of a ``RunView`` (the ``--json`` form)."""
    children: dict[str, list[Any]] = {}
    for record in run.records.values():
        if record.parent:
            children.setdefault(record.parent, []).append(record)
    ordered = run.ordered()
    maps = []
    routers = []
    for record in ordered:
        added = children.get(record.node_id, [])
        if record.kind == "map":
            counted = Counter(child.status for child in added)
            statuses = {status: counted[status] for status in STATUSES if counted[status]}
            maps.append({"node_id": record.node_id, "task": record.task, "status": record.status,
                         "calls": len(added), "statuses": statuses})  # fmt: skip
        elif record.kind == "router":
            taken = 1 if record.status not in ("failed", "skipped", "not_reached") else 0
            away = None if record.routes is None else record.routes - taken
            route_tasks = sum(not routed_away(child) for child in added)
            routers.append({"node_id": record.node_id, "task": record.task, "status": record.status,
                            "routes": record.routes, "route_tasks": route_tasks, "routed_away": away})  # fmt: skip
    reasons = Counter(record.text or "?" for record in ordered if record.status == "skipped")
    return {"maps": maps, "routers": routers, "skipped": dict(reasons.most_common())}


def _plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else word + 's'}"


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as the lines printed below the table (none for a run without maps, routers or skips)."""
    lines = []
    for entry in summary["maps"]:
        counts = ", ".join(f"{size} {_SHOWN.get(status, status)}" for status, size in entry["statuses"].items())
        what = f"{_plural(entry['calls'], 'call')}" + (f" ({counts})" if counts else "")
        if not entry["calls"] and entry["status"] != "executed":
            what = f"not expanded ({_SHOWN.get(entry['status'], entry['status'])})"
        lines.append(f"map {entry['task']} [{entry['node_id'][:12]}]: {what}")
    for entry in summary["routers"]:
        if entry["status"] in ("failed", "skipped", "not_reached"):
            what = f"no route taken ({_SHOWN.get(entry['status'], entry['status'])})"
        else:
            what = f"took a route of {_plural(entry['route_tasks'], 'new task')}"
        if entry["routed_away"] is not None:
            what += f", {entry['routed_away']} of {_plural(entry['routes'], 'route')} routed away"
        lines.append(f"router {entry['task']} [{entry['node_id'][:12]}]: {what}")
    skipped = summary["skipped"]
    if skipped:
        shown = list(skipped.items())[:SKIP_REASONS]
        rest = sum(skipped.values()) - sum(size for _, size in shown)
        parts = [f"{size} {reason}" for reason, size in shown] + ([f"{rest} other"] if rest else [])
        lines.append(f"skipped: {sum(skipped.values())} ({'; '.join(parts)})")
    return lines
