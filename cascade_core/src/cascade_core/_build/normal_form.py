"""The normal form of code for code versions: a definition's AST without docstrings, comments,
blank lines or layout, read from one parse of its file (parsed once per process)."""

from __future__ import annotations

import ast
import sys
import types
from typing import Any

_SKIPPED_FIELDS = frozenset({"ctx", "type_comment", "kind"})  # no behaviour in them
_NOTHING = object()


def assignment_form(filename: str, attribute: str) -> bytes | None:
    """The normal form of the module-level statements of a file that assign ``attribute``, or None."""
    definitions = _parsed(filename)
    statements = definitions.get(("assign", attribute)) if definitions else None
    if not statements:
        return None
    return _dump(ast.Module(body=list(statements), type_ignores=[])).encode()


def normal_form(obj: Any) -> bytes | None:
    """The AST of a function's or class's definition without docstrings, comments, blank lines
    or layout; None without source (a REPL, ``exec``, a lambda)."""
    key: tuple[Any, ...]
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        filename, key = code.co_filename, ("line", code.co_firstlineno, code.co_name)
    else:
        filename = getattr(sys.modules.get(obj.__module__), "__file__", None) or file_of(obj) or ""
        key = ("qualname", obj.__qualname__)
    definitions = _parsed(filename)
    node = definitions.get(key) if definitions else None
    if node is None:
        return None
    return _dump(ast.Module(body=[node], type_ignores=[])).encode()


_trees: dict[str, Any] = {}  # file -> its definitions (or None), parsed once per process


def _parsed(filename: str) -> dict[tuple, Any] | None:
    definitions = _trees.get(filename, _NOTHING)
    if definitions is _NOTHING:
        definitions = _trees[filename] = _definitions(filename)
    return definitions


def _definitions(filename: str) -> dict[tuple, ast.AST] | None:
    """Every function and class defined in a source file, docstrings removed: by first line
    (decorators included) and name, and by qualified name. Parsed whole, as ``inspect`` does
    for classes, without its tokenizer (whose regular expressions cost more than the parse)."""
    import linecache

    lines = linecache.getlines(filename)
    try:
        tree = ast.parse("".join(lines)) if lines else None
    except (SyntaxError, ValueError):
        tree = None
    if tree is None:
        return None
    found: dict[tuple, Any] = {}
    _index_assignments(tree.body, found)
    pending: list[tuple[ast.AST, str]] = [(tree, "")]
    while pending:
        parent, prefix = pending.pop()
        for node in ast.iter_child_nodes(parent):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                pending.append((node, prefix))
                continue
            body = node.body
            first_line = body[0] if body else None
            docstring = isinstance(first_line, ast.Expr) and isinstance(first_line.value, ast.Constant)
            if docstring and isinstance(first_line.value.value, str):  # type: ignore[union-attr]
                node.body = body[1:] or [ast.Pass()]
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            found.setdefault(("line", first, node.name), node)
            qualname = prefix + node.name
            found.setdefault(("qualname", qualname), node)
            pending.append((node, qualname + (".<locals>." if not isinstance(node, ast.ClassDef) else ".")))
    return found


def _index_assignments(statements: list[ast.stmt], found: dict[tuple, Any]) -> None:
    """``("assign", name) -> [statements]`` for the module-level assignments (in ``if``, ``try``
    and ``with`` blocks too)."""
    for statement in statements:
        targets: list[ast.AST] = []
        if isinstance(statement, ast.Assign):
            targets = list(statement.targets)
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
            targets = [statement.target]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    found.setdefault(("assign", node.id), []).append(statement)
        if isinstance(statement, (ast.If, ast.Try, ast.With)):
            _index_assignments(statement.body, found)
            _index_assignments(getattr(statement, "orelse", []), found)
            _index_assignments(getattr(statement, "finalbody", []), found)
            for handler in getattr(statement, "handlers", []):
                _index_assignments(handler.body, found)


def _dump(node: Any) -> str:
    """A stable text of an AST: node types and fields, empty fields left out (so a field that a
    later Python adds, empty, changes nothing)."""
    if isinstance(node, ast.AST):
        parts = [type(node).__name__]
        for field in node._fields:
            if field in _SKIPPED_FIELDS:
                continue
            value = getattr(node, field, None)
            if value is None or (isinstance(value, list) and not value):
                continue
            parts.append(f"{field}={_dump(value)}")
        return "(" + " ".join(parts) + ")"
    if isinstance(node, list):
        return "[" + ",".join(map(_dump, node)) + "]"
    return repr(node)


def file_of(obj: Any) -> str | None:
    """The source file of a function, or of a class's first method."""
    code = getattr(obj, "__code__", None)
    if code is None and isinstance(obj, type):
        code = next((v.__code__ for v in vars(obj).values() if isinstance(v, types.FunctionType)), None)
    return code.co_filename if code is not None else None
