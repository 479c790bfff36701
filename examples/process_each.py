"""Example workflow: list the files of a folder, then process each one (a map at run time).

The number of files is known only when ``list_files`` has run, so ``count_lines.map(...)``
expands then, into one call per file. Each call is cached by its file's path and contents:
add a file and run again, and only the new file is read.

    cascade run examples/process_each.py:pipeline --param folder=/etc
    cascade run examples/process_each.py:pipeline --param folder=/etc   # served from the cache

Small files are counted, large ones are summarised by a second route (``cs.Router``), and
the report is written only when something was found (``.run_if``).
"""

from __future__ import annotations

from pathlib import Path

import cascade_core as cs

folder = cs.Param("folder", default=str(Path(__file__).parent))
pattern = cs.Param("pattern", default="*.py")


@cs.task
def list_files(folder: str, pattern: str) -> list[tuple[str, int]]:
    """The files to process, with their modification times (so that an edited file is read again)."""
    return sorted((str(path), path.stat().st_mtime_ns) for path in Path(folder).glob(pattern) if path.is_file())


@cs.task(cache=True)
def count_lines(file: tuple[str, int]) -> tuple[str, int]:
    path, _ = file
    with open(path, "rb") as handle:
        return path, sum(1 for _ in handle)


@cs.task
def found_any(counts: list[tuple[str, int]]) -> bool:
    return bool(counts)


@cs.task
def size_class(counts: list[tuple[str, int]]) -> str:
    return "large" if sum(lines for _, lines in counts) > 10_000 else "small"


@cs.task
def every_file(counts: list[tuple[str, int]]) -> str:
    return "\n".join(f"{lines:8d}  {path}" for path, lines in counts)


@cs.task
def summary(counts: list[tuple[str, int]]) -> str:
    return f"{len(counts)} files, {sum(lines for _, lines in counts)} lines"


def pipeline() -> cs.LazyResult[str]:
    """List, count each file's lines, then report in full (few lines) or in summary (many)."""
    counts = count_lines.map(list_files(folder, pattern))
    report = cs.Router(size_class(counts), {"small": every_file(counts), "large": summary(counts)})
    return report.run_if(found_any(counts))
