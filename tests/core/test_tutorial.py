"""docs/tutorial.md runs as written: its Python files are saved, its commands run one after
another in a fresh directory (real subprocesses, a real redis-server for the Redis section),
and each prints what the tutorial shows below it.

Reading rules: a ```python block starts with ``# NAME.py`` and is saved as that file; in a
```sh block, ``$ COMMAND`` lines are commands and the lines under one are its output, matched
in order (other lines may come between them). ``...`` stands for any text, a line of ``...``
for any lines. Times, process ids, generated run ids and the version are compared as such,
not by value, and runs of spaces as one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"

VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00"), "<time>"),
    (re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{8}\b"), "<run id>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\.\d{3}\b"), "<clock>"),
    (re.compile(r"\b\d+\.\d+s\b"), "<seconds>"),
    (re.compile(r"\bpid \d+"), "pid <pid>"),
    (re.compile(r"^cascade-core \S+$"), "cascade-core <version>"),
]


def blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", TUTORIAL.read_text(), flags=re.M | re.S)


def normal(line: str) -> str:
    line = " ".join(line.split())
    for pattern, replacement in VARYING:
        line = pattern.sub(replacement, line)
    return line


def matches(expected: str, actual: str) -> bool:
    parts = [re.escape(part) for part in normal(expected).split("...")]
    return re.fullmatch(".*".join(parts), normal(actual)) is not None


def assert_prints(command: str, expected: list[str], output: str) -> None:
    """Every expected line, in order, among the lines printed (a line of ``...`` skips any)."""
    printed = [line for line in output.splitlines() if line.strip()]
    position = 0
    for line in (line for line in expected if line.strip() != "..."):
        while position < len(printed) and not matches(line, printed[position]):
            position += 1
        assert position < len(printed), f"$ {command}\nexpected the line {line!r} in order in:\n{output}"
        position += 1


def commands(text: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown under it) of a ```sh block."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before any command: {line!r}"
            steps[-1][1].append(line)
    return steps


def clone(directory: Path) -> Path:
    """The distributions the tutorial installs, copied (so pip builds nothing in the shared tree)."""
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*cache*")
    for name in ("cascade_core", "cascade_redis"):
        shutil.copytree(ROOT / name, directory / name, ignore=ignore)
    return directory


def as_run_here(command: str, redis_address: str) -> str:
    """The command with this interpreter for ``python`` and ``cascade``, and the test's own Redis."""
    python = f'"{sys.executable}"'
    command = re.sub(r"(^|(?<=\s))python ", python + " ", command)
    command = re.sub(r"(^|(?<=\s))cascade ", python + " -m cascade_core ", command)
    return command.replace("localhost:6379", redis_address)


def test_the_tutorial_is_python_files_and_shell_sessions():
    found = blocks()
    assert found and {language for language, _ in found} == {"python", "sh"}
    for language, text in found:
        if language == "python":
            assert re.match(r"# \w+\.py\n", text), text.splitlines()[0]
        else:
            assert text.startswith("$ "), text.splitlines()[0]


def test_the_tutorial_is_linked_first_from_the_readme_and_the_docs_index():
    index = (ROOT / "docs" / "index.md").read_text()
    first_link = re.search(r"\]\(([^)]+)\)", index)
    assert first_link and first_link.group(1) == "tutorial.md"
    readme = (ROOT / "README.md").read_text()
    docs_row = next(line for line in readme.splitlines() if line.startswith("| `docs/` |"))
    assert re.search(r"\]\(([^)]+)\)", docs_row).group(1) == "docs/tutorial.md"  # type: ignore[union-attr]


def test_every_block_runs_and_prints_what_the_tutorial_shows(tmp_path, redis_uri):
    work = tmp_path / "tutorial"
    work.mkdir()
    repository = clone(tmp_path / "clone")
    redis_address = redis_uri.split("://", 1)[1].split("/", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_") and k != "COLUMNS"}
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr in the order they were written, as on a terminal
    last_code = 0
    ran = 0
    for language, text in blocks():
        if language == "python":
            name, _, _ = text.partition("\n")
            (work / name[2:].strip()).write_text(text)
            continue
        for command, expected in commands(text):
            if command == "echo $?":
                assert expected == [str(last_code)], (command, expected, last_code)
                continue
            shell = as_run_here(command, redis_address)
            cwd = work
            if " -m pip install " in shell:  # from the clone; resolved and built, not installed
                shell += " --dry-run --no-deps --no-index --no-build-isolation --quiet"
                cwd = repository
            done = subprocess.run(
                ["bash", "-c", shell + " 2>&1"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
            )
            last_code = done.returncode
            output = done.stdout
            if "Traceback" in output or (last_code != 0 and "CRASH=1" not in command):
                pytest.fail(f"$ {command}\nexited {last_code}:\n{output}", pytrace=False)
            assert_prints(command, expected, output)
            ran += 1
    assert ran >= 15
