"""Load ``path/to/file.py:NAME`` or ``package.module:NAME`` into something ``run`` accepts.

A file is imported under its file name (``wordcount.py`` -> module ``wordcount``), as a
script run directly names its tasks (see ``_task._module_name``): task names, node ids and
cache keys are the same whichever way the workflow is started. The module is registered in
``sys.modules`` (pickle and dataclasses look classes up there) and the file's directory is
put on ``sys.path`` (a script's sibling modules import, as with ``python file.py``).

A function target is called with the ``--param`` values its parameters name, converted to
their annotated type; the other values are left for the graph's ``Param`` objects.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .._errors import ParamError, TargetError, UsageError

_SHAPES = (list, tuple, dict)


def target_command(commands: Any, name: str, *, help: str, description: str) -> Any:
    """A subcommand that takes ``PATH_OR_MODULE:TARGET`` first, as ``cascade run`` and ``cascade graph``."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("target", metavar="PATH_OR_MODULE:TARGET")
    return parser


def add_param_option(parser: Any, help: str) -> None:
    """``--param NAME=VALUE`` / ``-p`` (repeatable); read with ``parse_params``."""
    parser.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE", help=help)


def parse_params(items: list[str]) -> dict[str, str]:
    """The ``--param`` items as a dict; an item without ``=`` or a name is a UsageError."""
    params: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--param takes NAME=VALUE, got {item!r}")
        params[name.strip()] = value
    return params


def split_target(spec: str) -> tuple[str, str]:
    location, colon, name = spec.rpartition(":")
    if not colon or not location or not name:
        raise UsageError(f"target {spec!r} must look like path/to/file.py:NAME or package.module:NAME")
    return location, name


def _is_path(location: str) -> bool:
    return location.endswith(".py") or os.sep in location or "/" in location


def load_target(spec: str, params: Mapping[str, str] | None = None) -> tuple[Any, dict[str, str]]:
    """The lazy result (or list/tuple/dict of them) that ``spec`` names, and the params left for its graph.

    A function is called with the values of ``params`` that name its parameters.
    """
    from .._build.task import LazyResult

    given = dict(params or {})
    location, name = split_target(spec)
    module = _import_file(location) if _is_path(location) else _import_module(location)
    try:
        obj = getattr(module, name)
    except AttributeError:
        raise UsageError(f"{location} has no attribute {name!r}") from None
    if isinstance(obj, (LazyResult, *_SHAPES)):
        return obj, given
    if not callable(obj) or isinstance(obj, type):
        raise TargetError(f"{spec} is {type(obj).__name__}, not a lazy result or a function returning one")
    kwargs = _call_arguments(spec, obj, given)
    try:
        value = obj(**kwargs)
    except Exception as exc:
        raise TargetError(f"calling {spec}() failed: {_one_line(exc)}") from exc
    if isinstance(value, (LazyResult, *_SHAPES)):
        return value, {key: text for key, text in given.items() if key not in kwargs}
    raise TargetError(f"{spec}() returned {type(value).__name__}, not a lazy result: return a task call")


_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _call_arguments(spec: str, fn: Any, given: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments for ``fn`` from ``given``: one per parameter it names, converted."""
    try:
        signature = inspect.signature(fn, eval_str=True)
    except Exception:  # an annotation that does not evaluate: keep them as strings
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # no signature (some builtins): call it bare
            return {}
    kwargs: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind not in _KEYWORD_KINDS:
            continue
        if name in given:
            kwargs[name] = _convert(spec, name, parameter.annotation, given[name])
        elif parameter.default is inspect.Parameter.empty:
            raise ParamError(f"calling {spec}() needs its parameter {name!r}: pass --param {name}=VALUE", param=name)
    return kwargs


_BASIC = {"int": int, "float": float, "bool": bool, "str": str}


def _convert(spec: str, name: str, annotation: Any, text: str) -> Any:
    """``text`` as the parameter's annotated type: int, float, bool, str (or one of them ``| None``)."""
    from .._build.params import convert_param
    from .._build.task import Param

    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return text
    kind = _basic_type(annotation)
    if kind is None:
        shown = annotation.__name__ if isinstance(annotation, type) else str(annotation)
        raise ParamError(
            f"parameter {name!r} of {spec} is annotated {shown}: --param converts only to int, float, bool "
            "or str; give the function a parameter of one of these types",
            param=name,
        )
    return convert_param(Param(name, type=kind), text)


def _basic_type(annotation: Any) -> type | None:
    import types
    import typing

    if isinstance(annotation, str):  # not evaluated: recognise the plain names only
        return _BASIC.get(annotation.strip())
    if annotation in _BASIC.values():
        return annotation  # type: ignore[no-any-return]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(kinds) == 1 and kinds[0] in _BASIC.values():
            return kinds[0]  # type: ignore[no-any-return]
    return None


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
    from .._masking import describe

    return describe(exc)
