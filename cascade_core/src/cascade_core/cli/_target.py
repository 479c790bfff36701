"""Load ``path/to/file.py:NAME`` or ``package.module:NAME`` into something ``run`` accepts.

A file is imported under its file name (``wordcount.py`` -> module ``wordcount``), as a
script run directly names its tasks (see ``_task._module_name``): task names, node ids and
cache keys are the same whichever way the workflow is started. The module is registered in
``sys.modules`` (pickle and dataclasses look classes up there) and the file's directory is
put on ``sys.path`` (a script's sibling modules import, as with ``python file.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .._errors import TargetError, UsageError

_SHAPES = (list, tuple, dict)


def split_target(spec: str) -> tuple[str, str]:
    location, colon, name = spec.rpartition(":")
    if not colon or not location or not name:
        raise UsageError(f"target {spec!r} must look like path/to/file.py:NAME or package.module:NAME")
    return location, name


def _is_path(location: str) -> bool:
    return location.endswith(".py") or os.sep in location or "/" in location


def load_target(spec: str) -> Any:
    """The lazy result (or list/tuple/dict of them) that ``spec`` names; a function is called."""
    from .._task import LazyResult

    location, name = split_target(spec)
    module = _import_file(location) if _is_path(location) else _import_module(location)
    try:
        obj = getattr(module, name)
    except AttributeError:
        raise UsageError(f"{location} has no attribute {name!r}") from None
    if isinstance(obj, (LazyResult, *_SHAPES)):
        return obj
    if not callable(obj) or isinstance(obj, type):
        raise TargetError(f"{spec} is {type(obj).__name__}, not a lazy result or a function returning one")
    try:
        value = obj()
    except Exception as exc:
        raise TargetError(f"calling {spec}() failed: {_one_line(exc)}") from exc
    if isinstance(value, (LazyResult, *_SHAPES)):
        return value
    raise TargetError(f"{spec}() returned {type(value).__name__}, not a lazy result: return a task call")


def _import_file(location: str) -> ModuleType:
    path = Path(location)
    if not path.is_file():
        raise UsageError(f"no such file: {location}")
    if path.suffix != ".py":
        raise UsageError(f"{location} is not a Python file (.py)")
    resolved = path.resolve()
    module_name = path.stem
    existing = sys.modules.get(module_name)
    if existing is not None and not _same_file(existing, resolved):
        # Registering the file under that name would replace a module already in use
        # (a file named json.py would break the json module for the rest of the command).
        where = getattr(existing, "__file__", None) or "built in"
        raise UsageError(
            f"{location} would be imported as module {module_name!r}, which is already imported from {where}: "
            "rename the file"
        )
    module_spec = importlib.util.spec_from_file_location(module_name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"cannot import {location}")
    module = importlib.util.module_from_spec(module_spec)
    directory = str(resolved.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if not isinstance(exc, Exception):
            raise
        raise TargetError(f"importing {location} failed: {_one_line(exc)}") from exc
    return module


def _import_module(location: str) -> ModuleType:
    # As `python -m`: modules of the working directory import.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as exc:
        if exc.name and (location == exc.name or location.startswith(exc.name + ".")):
            raise UsageError(f"no module named {location!r} (a file path needs a '/' or a '.py' suffix)") from exc
        raise TargetError(f"importing {location} failed: {_one_line(exc)}") from exc
    except Exception as exc:
        raise TargetError(f"importing {location} failed: {_one_line(exc)}") from exc


def _same_file(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    try:
        return file is not None and Path(file).resolve() == path
    except OSError:
        return False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
