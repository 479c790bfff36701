"""A picture as Mermaid flowchart text (GitHub, GitLab and Jupyter draw it; no dependency)."""

from __future__ import annotations

from .graph_model import Picture
from .palette import STYLES

_DASHES = {"dashed": "stroke-dasharray:6 4", "dotted": "stroke-dasharray:2 3", "bold": "stroke-width:3px"}
# Characters that end a quoted label or start markup or an entity: written as Mermaid's #code; entities.
# A map's box is a subroutine (double sides), a router a hexagon.
_SHAPES = {"map": ("[[", "]]"), "router": ("{{", "}}")}
_UNSAFE = {ord(ch): f"#{ord(ch)};" for ch in '"#&<>`\\[]{}|'}


def text(value: str) -> str:
    """``value`` safe inside a quoted Mermaid label: markup characters as ``#code;``, no line breaks."""
    return " ".join(value.translate(_UNSAFE).split())


def to_mermaid(picture: Picture, *, explain: bool = True) -> str:
    """Mermaid text; ``explain``: say in a comment why edges are missing (the report says it itself)."""
    lines = ["flowchart LR"]
    if explain and not picture.edges_known:
        lines.append(f"  %% {text(picture.edges_note())}: draw it with its target to see them")
    for node in picture.nodes:
        label = "<br/>".join(text(line) for line in picture.label_lines(node))
        opening, closing = _SHAPES.get(node.kind or "", ("(", ")") if node.cacheable else ("[", "]"))
        lines.append(f'  {node.key}{opening}"{label}"{closing}')
    for edge in picture.edges:
        arrow = "-.->" if edge.order_only else "-->"
        count = f'|"×{edge.count}"|' if edge.count > 1 else ""
        lines.append(f"  {picture.nodes[edge.source].key} {arrow}{count} {picture.nodes[edge.target].key}")
    statuses = picture.statuses()
    legend = _legend(picture, statuses)
    lines.extend(legend)
    for status in statuses:
        style = STYLES[status]
        extra = _DASHES.get(style.border)
        lines.append(
            f"  classDef {status} fill:{style.fill},color:{style.text},stroke:#333333{',' + extra if extra else ''}"
        )
    lines.append("  classDef target stroke-width:4px")
    by_status: dict[str, list[str]] = {}
    for node in picture.nodes:
        by_status.setdefault(node.status, []).append(node.key)
    if legend:
        for status in statuses:
            by_status.setdefault(status, []).append(f"legend_{status}")
    for status in statuses:
        for start in range(0, len(by_status.get(status, ())), 500):  # short lines for long graphs
            lines.append(f"  class {','.join(by_status[status][start : start + 500])} {status}")
    targets = [node.key for node in picture.nodes if node.target]
    if targets:
        lines.append(f"  class {','.join(targets)} target")
    return "\n".join(lines) + "\n"


def _legend(picture: Picture, statuses: list[str]) -> list[str]:
    if picture.run is None:
        return []
    lines = ['  subgraph legend["legend"]', "    direction LR"]
    for status in statuses:
        style = STYLES[status]
        legend = picture.legends.get(status, style.legend)
        lines.append(f'    legend_{status}["{text(f"{style.symbol} {legend}".strip())}"]')
    lines.append("  end")
    return lines
