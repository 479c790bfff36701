"""Pictures of graphs and runs: Mermaid, DOT, JSON, SVG and PNG, and the HTML run report.

>>> print(cs.graph(add(add(1, 2), 3)))          # doctest: +SKIP
flowchart LR
  n0["add · 5c1f09a2"]
  ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import UsageError
from .graph_model import DEFAULT_COLLAPSE, Picture, from_graph, from_run
from .run_view import RunView

FORMATS = ("mermaid", "dot", "json", "svg", "png")

__all__ = ["DEFAULT_COLLAPSE", "FORMATS", "Picture", "RunView", "draw", "from_graph", "from_run", "graph", "markdown"]


def draw(picture: Picture, fmt: str) -> str | bytes:
    """``picture`` in ``fmt``: text for mermaid, dot, json and svg; bytes for png."""
    if fmt == "mermaid":
        from .mermaid import to_mermaid

        return to_mermaid(picture)
    if fmt == "json":
        from .json_format import to_json

        return to_json(picture)
    from .dot import render, to_dot

    if fmt == "dot":
        return to_dot(picture)
    if fmt == "svg":
        return render(to_dot(picture), "svg").decode()
    if fmt == "png":
        return render(to_dot(picture), "png")
    raise UsageError(f"unknown graph format {fmt!r}: use one of {', '.join(FORMATS)}")


def graph(
    target: Any,
    format: str = "mermaid",
    *,
    params: Mapping[str, Any] | None = None,
    collapse: int | None = DEFAULT_COLLAPSE,
) -> str | bytes:
    """Draw ``target``'s graph without running it: Mermaid, DOT, JSON or SVG text, or PNG bytes.

    Above ``collapse`` task calls (None: never), the calls of one task at one depth are drawn
    as one node. SVG and PNG need Graphviz's ``dot`` program on PATH.
    """
    from .._build.graph import build_graph

    if format not in FORMATS:
        raise UsageError(f"unknown graph format {format!r}: use one of {', '.join(FORMATS)}")
    if collapse is not None and (not isinstance(collapse, int) or isinstance(collapse, bool) or collapse < 1):
        raise UsageError(f"collapse must be a whole number >= 1 or None, got {collapse!r}")
    return draw(from_graph(build_graph(target, params), collapse=collapse), format)


def markdown(target: Any) -> str | None:
    """A Mermaid diagram of ``target``'s graph in a Markdown fence; None when it cannot be built yet
    (a required param has no value), so that Jupyter falls back to the plain repr."""
    from .._errors import CascadeError

    try:
        text = graph(target)
    except CascadeError:
        return None
    return f"```mermaid\n{text!s}```\n"
