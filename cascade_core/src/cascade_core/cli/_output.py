"""Plain-text tables and JSON, the two output forms of every data command."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def print_json(data: Any) -> None:
    # One write: the secret scrubber (see _secrets) must see whole strings.
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths))
    print(line.rstrip())
    for row in cells:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def plural(n: Any, word: str, words: str = "") -> str:
    """``1 task``, ``2 tasks``, ``? tasks`` (a count that is not a number)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def describe_counts(counts: Mapping[str, Any]) -> str:
    """``2 executed, 16 cached, 1 by other drivers``: the non-zero counts but ``total``, in their order.

    Generic, so a count the engine adds reads well: ``by_other_drivers`` -> ``by other drivers``.
    """
    return ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in counts.items() if value and name != "total")
