"""docs/concepts.md's signatures of run, arun and Engine are the code's, argument by argument."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import cascade_core as cs

CONCEPTS = Path(__file__).resolve().parents[2] / "docs" / "concepts.md"
INTERNAL = {"execute": {"loop", "cancel"}}  # arun's hand-off to execute, not for users


def documented_calls() -> dict[str, ast.arguments]:
    """``name -> its parameters`` for each call drawn in the first code block under "## Running"."""
    text = CONCEPTS.read_text()
    block = text[text.index("## Running") :].split("```python\n", 1)[1].split("```", 1)[0]
    statements = re.split(r"\n(?=\S)", block.strip())  # continuation lines are indented
    calls = {}
    for statement in statements:
        code = statement.split("#", 1)[0].strip()
        match = re.fullmatch(r"(?:await )?cs\.(\w+)(?:\(\.\.\.\)\.(\w+))?\((.*)\)", code, flags=re.S)
        assert match, statement
        owner, method, arguments = match.groups()
        name = f"{owner}.{method}" if method else owner
        calls[name] = ast.parse(f"def f({arguments}): pass").body[0].args  # type: ignore[attr-defined]
    return calls


def documented(args: ast.arguments) -> list[tuple[str, object, bool]]:
    """(name, default or inspect.Parameter.empty, keyword-only) of each parameter drawn."""
    positional = args.posonlyargs + args.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + [
        ast.literal_eval(d) for d in args.defaults
    ]
    params = [(a.arg, d, False) for a, d in zip(positional, defaults)]
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        params.append((a.arg, inspect.Parameter.empty if d is None else ast.literal_eval(d), True))
    return params


def actual(function) -> list[tuple[str, object, bool]]:
    return [
        (p.name, p.default, p.kind is inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(function).parameters.values()
        if p.name != "self"
    ]


TARGETS = {
    "run": cs.run,
    "arun": cs.arun,
    "Engine": cs.Engine.__init__,
    "Engine.run": cs.Engine.run,
    "Engine.arun": cs.Engine.arun,
    "Engine.execute": cs.Engine.execute,
}


def test_every_entry_point_is_drawn():
    assert set(documented_calls()) == set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_documented_parameters_are_the_signature(name):
    internal = INTERNAL.get(name.split(".")[-1], set()) if name.startswith("Engine.") else set()
    code = [p for p in actual(TARGETS[name]) if p[0] not in internal]
    drawn = documented(documented_calls()[name])
    assert [(n, d) for n, d, _ in drawn] == [(n, d) for n, d, _ in code]
    # After the `*`, every parameter is keyword-only in the code too.
    assert [k for _, _, k in drawn] == [k for _, _, k in code]


def test_the_table_describes_every_parameter():
    text = CONCEPTS.read_text()
    table = text[text.index("| argument | what | default |") :].split("\n\n", 1)[0]
    described = set(re.findall(r"^\| `(\w+)`", table, flags=re.M)) | set(re.findall(r"\(`Engine`: `(\w+)`\)", table))
    names = {n for function in TARGETS.values() for n, _, _ in actual(function)} - {"loop", "cancel"}
    assert described == names
