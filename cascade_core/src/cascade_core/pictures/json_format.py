"""A picture as JSON for other tools; docs/graph-schema.json is its schema (``format`` and ``version`` name it)."""

from __future__ import annotations

import json
from typing import Any

from .graph_model import Picture
from .palette import STYLES

FORMAT, VERSION = "cascade-graph", 1


def to_data(picture: Picture) -> dict[str, Any]:
    run = picture.run
    nodes = []
    for node in picture.nodes:
        record = run.records.get(node.node_id) if run is not None and node.node_id is not None else None
        nodes.append(
            {
                "key": node.key,
                "task": node.task,
                "label": node.name,
                "calls": node.count if node.known else None,
                "kind": node.kind,
                "node_id": node.node_id,
                "depth": node.depth,
                "target": node.target,
                "cacheable": node.cacheable,
                "status": node.status,
                "statuses": node.statuses,
                "duration_s": record.duration if record is not None else None,
                "size": record.size if record is not None else None,
                "blob": record.blob if record is not None else None,
                "text": record.text if record is not None else None,
                "attempts": record.attempts if record is not None else None,
            }
        )
    keys = [node.key for node in picture.nodes]
    return {
        "format": FORMAT,
        "version": VERSION,
        "calls": picture.calls,
        "collapsed": picture.collapsed,
        "edges_known": picture.edges_known,
        "run": None if run is None else _run(run),
        "nodes": nodes,
        "edges": [
            {"source": keys[e.source], "target": keys[e.target], "calls": e.count, "order_only": e.order_only}
            for e in picture.edges
        ],
        "legend": [
            {
                "status": status,
                "label": STYLES[status].legend,
                "fill": STYLES[status].fill,
                "symbol": STYLES[status].symbol,
            }
            for status in picture.statuses()
        ],
    }


def _run(run: Any) -> dict[str, Any]:
    counts = {}
    for key, value in run.info.items():
        if key.startswith("count_"):
            try:
                counts[key[len("count_") :]] = int(value)
            except (TypeError, ValueError):
                pass
    return {
        "run_id": run.run_id,
        "status": run.info.get("status"),
        "target": run.info.get("target"),
        "created": run.info.get("created"),
        "updated": run.info.get("updated"),
        "counts": counts,
    }


def to_json(picture: Picture) -> str:
    return json.dumps(to_data(picture), indent=2, ensure_ascii=False) + "\n"
