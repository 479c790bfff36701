"""A picture as Graphviz DOT text, and SVG or PNG through the ``dot`` program when it is installed."""

from __future__ import annotations

import shutil
import subprocess

from .._errors import UsageError
from .graph_model import Picture, PictureNode
from .palette import CACHEABLE_NOTE, MAP_NOTE, ROUTER_NOTE, STYLES, TARGET_NOTE

FONT = "DejaVu Sans,Arial,sans-serif"
INSTALL_HINT = (
    "drawing {fmt} needs Graphviz's 'dot' program, which is not on PATH: install Graphviz "
    "(apt-get install graphviz, brew install graphviz or conda install graphviz), or ask for mermaid, dot or json"
)
_SHAPES = {"map": "box3d", "router": "hexagon"}  # a map's box of calls, a router
_PEN = {"solid": "", "bold": "bold", "dashed": "dashed", "dotted": "dotted"}


def quote(value: str) -> str:
    """``value`` as a DOT string that shows exactly that text (no escapes, entities or records)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    return '"' + "\\n".join(escaped.splitlines() or [""]) + '"'


def to_dot(picture: Picture, *, explain: bool = True) -> str:
    """DOT text; ``explain``: say in the drawing's title why edges are missing (the report says it itself)."""
    lines = [
        "digraph cascade {",
        f'  graph [rankdir=LR, fontname="{FONT}", fontsize=10, nodesep=0.25, ranksep=0.45, tooltip=" "];',
        f'  node [shape=box, style=filled, fontname="{FONT}", fontsize=10, height=0.3, margin="0.12,0.05"];',
        f'  edge [color="#555555", arrowsize=0.7, fontname="{FONT}", fontsize=9];',
    ]
    if explain and not picture.edges_known:
        note = f"{picture.edges_note()}: draw it with its target to see them"
        lines.append(f"  label={quote(note)}; labelloc=t;")
    lines.extend(_node(picture, node) for node in picture.nodes)
    for edge in picture.edges:
        attributes = []
        if edge.count > 1:
            attributes.append(f"label={quote(f'×{edge.count}')}")
        if edge.order_only:
            attributes.append("style=dashed")
        extra = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {picture.nodes[edge.source].key} -> {picture.nodes[edge.target].key}{extra};")
    lines.extend(_legend(picture))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(picture: Picture, node: PictureNode) -> str:
    style = STYLES[node.status]
    styles = ["filled", *(["rounded"] if node.cacheable else []), *([_PEN[style.border]] if _PEN[style.border] else [])]
    attributes = [
        f"label={quote(chr(10).join(picture.label_lines(node)))}",
        f'fillcolor="{style.fill}"',
        f'fontcolor="{style.text}"',
        f'style="{",".join(styles)}"',
        f"tooltip={quote(picture.tooltip(node))}",
    ]
    if node.target:
        attributes.append("peripheries=2")
    if node.kind is not None:
        attributes.append(f"shape={_SHAPES[node.kind]}")
    return f"  {node.key} [{', '.join(attributes)}];"


def _legend(picture: Picture) -> list[str]:
    entries = []
    if picture.run is not None:
        for status in picture.statuses():
            style = STYLES[status]
            pen = f",{_PEN[style.border]}" if _PEN[style.border] else ""
            text = f"{style.symbol} {style.legend}".strip()
            entries.append(
                f'legend_{status} [label={quote(text)}, fillcolor="{style.fill}", fontcolor="{style.text}", '
                f'style="filled{pen}"];'
            )
    if any(node.target for node in picture.nodes):
        entries.append(f'legend_target [label={quote(TARGET_NOTE)}, fillcolor="#FFFFFF", peripheries=2];')
    if any(node.cacheable for node in picture.nodes):
        entries.append(
            f'legend_cacheable [label={quote(CACHEABLE_NOTE)}, fillcolor="#FFFFFF", style="filled,rounded"];'
        )
    for kind, note in (("map", MAP_NOTE), ("router", ROUTER_NOTE)):
        if any(node.kind == kind for node in picture.nodes):
            entries.append(f'legend_{kind} [label={quote(note)}, fillcolor="#FFFFFF", shape={_SHAPES[kind]}];')
    if not entries:
        return []
    names = " -> ".join(entry.split(" ", 1)[0] for entry in entries)
    return [
        "  subgraph cluster_legend {",
        f'    label="legend"; fontname="{FONT}"; fontsize=10; color="#999999"; style=rounded;',
        *(f"    {entry}" for entry in entries),
        *([f"    {names} [style=invis];"] if len(entries) > 1 else []),
        "  }",
    ]


def dot_program() -> str | None:
    return shutil.which("dot")


def render(dot_text: str, fmt: str) -> bytes:
    """``dot_text`` drawn as ``fmt`` (svg or png) by Graphviz; a one-line error when ``dot`` is missing."""
    program = dot_program()
    if program is None:
        raise UsageError(INSTALL_HINT.format(fmt=fmt))
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"Graphviz's dot could not draw the graph ({exc}): ask for format dot and draw it yourself")
    if done.returncode != 0:
        reason = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"Graphviz's dot failed ({reason}): ask for format dot and draw it yourself")
    return done.stdout
