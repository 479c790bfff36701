"""What each node status looks like in every picture: colour, text colour, border, symbol, legend text.

The fills are the Okabe-Ito palette, chosen to stay apart under the common kinds of colour
blindness; each status also differs by a symbol, and failed, skipped and not-reached nodes by
their border, so no picture depends on colour alone.
"""

from __future__ import annotations

from typing import NamedTuple


class Style(NamedTuple):
    fill: str
    text: str  # text colour with at least 4.5:1 contrast on the fill
    border: str  # solid, bold, dashed or dotted
    symbol: str
    legend: str


# Also the order of the legend and of a collapsed node's counts.
STYLES: dict[str, Style] = {
    "planned": Style("#FFFFFF", "#000000", "solid", "", "not run (graph only)"),
    "executed": Style("#009E73", "#000000", "solid", "✓", "executed"),
    "cached": Style("#56B4E9", "#000000", "solid", "◆", "from the cache"),
    "resumed": Style("#0072B2", "#FFFFFF", "solid", "↺", "resumed (stored by an earlier attempt)"),
    "other_driver": Style("#CC79A7", "#000000", "solid", "⇄", "done by another driver"),
    "failed": Style("#D55E00", "#000000", "bold", "✗", "failed"),
    "skipped": Style("#F0E442", "#000000", "dashed", "⊘", "skipped (upstream failed or skipped, run_if false)"),
    "not_reached": Style("#DDDDDD", "#000000", "dotted", "○", "not reached or not needed"),
}
STATUSES = tuple(STYLES)

# A collapsed node takes the colour of the first of these it holds, else of its most common status.
SEVERITY = ("failed", "skipped", "not_reached")

TARGET_NOTE = "target: double border"
CACHEABLE_NOTE = "cacheable task: rounded corners"
MAP_NOTE = "map: its calls in one box (×N, ×? before it ran)"
ROUTER_NOTE = "router: runs the route its input selects"


def group_status(counts: dict[str, int]) -> str:
    """The status a node standing for several calls is coloured by."""
    for status in SEVERITY:
        if counts.get(status):
            return status
    return max(counts, key=lambda status: (counts[status], -STATUSES.index(status)))


def describe_counts(counts: dict[str, int]) -> str:
    """``✓998 ✗2``: a symbol and a count per status, in legend order (``planned`` has no symbol)."""
    return " ".join(
        f"{STYLES[status].symbol}{counts[status]}"
        for status in STATUSES
        if counts.get(status) and STYLES[status].symbol
    )
