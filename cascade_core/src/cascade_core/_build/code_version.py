"""Code versions that follow calls: a task's own code and the user code it reaches.

A task's code version is a digest over *units*: its function, and every function, class and
simple module-level constant of the user's own modules that it reaches, transitively, through
the names its bytecode loads (globals, attributes of imported user modules, locally imported
names, closure cells, methods and bases of user classes). Code of installed distributions
(files under ``site-packages``/``dist-packages``) enters as ``<distribution>==<version>``; the
standard library, builtins and Cascade itself do not enter. Each unit is hashed in a normalised
form, the AST without docstrings, comments, blank lines or formatting (the bytecode without
line numbers when there is no source), so only a change of behaviour changes it.

The reachable set is a closure over memoised edges, so cycles (mutual recursion, a class whose
methods name the class) need nothing special. Units are analysed once per process; names that
cannot be resolved are reported once per task (docs/concepts.md, "Caching", lists what is not
followed).
"""

from __future__ import annotations

import dis
import logging
import sys
import types
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .hashing import digest
from .normal_form import assignment_form, file_of, normal_form

log = logging.getLogger("cascade")

FORMAT = b"cascade code version 3\0"  # part of every code version: bump it when the normal form changes

_SCALARS = (int, float, complex, str, bytes, bool, type(None))
_LOADS_GLOBAL = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_LOADS_ATTR = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_STORES = frozenset({"STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF"})


class CodeVersion:
    """A task's code version: its digest, the units it covers (name -> digest) and the names
    its code loads that could not be resolved."""

    __slots__ = ("digest", "units", "unresolved")

    def __init__(self, digest: str, units: dict[str, str], unresolved: tuple[str, ...]) -> None:
        self.digest = digest
        self.units = units
        self.unresolved = unresolved


class _Unit:
    __slots__ = ("name", "module", "local", "digest", "refs", "unresolved")

    def __init__(
        self, name: str, unit_digest: str, refs: list[Any], unresolved: list[str], module: str = "", local: str = ""
    ) -> None:
        self.name = name  # shown (explain): module label and qualified name, or "<distribution>==<version>"
        self.module, self.local = module, local or name  # its module (none for a distribution), the rest
        self.digest = unit_digest
        self.refs = refs  # the objects it reaches (resolved to units when the closure is walked)
        self.unresolved = unresolved


# Memos of this process: id(object) -> (a weak reference to it, its unit or None), module name
# -> kind. Units hold what they reach as functions, classes and modules (an instance by its
# class), so that the memo keeps no value a task's code reaches alive.
_units: dict[int, tuple[Callable[[], Any], _Unit | None]] = {}
_kinds: dict[str, str] = {}
_versions: dict[str, str] = {}  # top-level package -> "<distribution>==<version>"


def follow(fn: Any, label: str) -> CodeVersion:
    """The code version of function ``fn`` (of task ``label``), warning once about what it cannot follow."""
    units: dict[str, str] = {}
    unresolved: list[str] = []
    seen: set[int] = set()
    reached: list[_Unit] = []
    root = _unwrapped(fn)
    # Its own code counts wherever it lives (a script, a REPL); a callable without code, by its name.
    forced = isinstance(root, (types.FunctionType, type))
    root_unit = _unit_of(root, force=forced) or _Unit(label, digest(label.encode()), [], [])
    pending: list[Any] = [root_unit]
    while pending:
        item = pending.pop()
        unit = item if isinstance(item, _Unit) else _unit_of(item)
        if unit is None or id(unit) in seen:
            continue
        seen.add(id(unit))
        reached.append(unit)
        units[unit.name] = unit.digest
        unresolved.extend(unit.unresolved)
        pending.extend(unit.refs)
    # Units of the task's own module enter by their names within it: however that module was
    # imported (a script as __main__, a file under another name), its tasks keep their versions.
    own = getattr(root_unit, "module", "")
    named = {(unit.local if unit.module == own else unit.name): unit.digest for unit in reached}
    material = FORMAT + "\0".join(f"{name}\0{named[name]}" for name in sorted(named)).encode()
    names = tuple(sorted(set(unresolved)))
    if names:
        log.warning(
            "task %s: its code version cannot follow %s (not found when it was computed); changes there do not "
            "invalidate its cache: give the task version=... and change it when they change",
            label,
            ", ".join(names),
        )
    return CodeVersion(digest(material), units, names)


def _unit_of(obj: Any, force: bool = False) -> _Unit | None:
    """The unit an object stands for (memoised), or None when it enters no code version; with
    ``force``, a function or class is the user's wherever it lives."""
    memo = _units.get(id(obj))
    if memo is not None and memo[0]() is obj and (memo[1] is not None or not force):
        return memo[1]
    unit = _make_unit(obj, force)
    try:
        held: Callable[[], Any] = weakref.ref(obj)
    except TypeError:  # (a builtin function: it lives as long as its module anyway)
        held = _Strong(obj)
    _units[id(obj)] = (held, unit)
    return unit


class _Strong:
    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


def _make_unit(obj: Any, force: bool = False) -> _Unit | None:
    if isinstance(obj, _Constant):
        if _kind(obj.module, obj.file) != "user":
            return None
        form = assignment_form(obj.file, obj.attribute)
        return _Unit(obj.name, digest(form or _stable_repr(obj.value).encode()), [], [], obj.module, obj.attribute)
    obj = _unwrapped(obj)
    if isinstance(obj, types.ModuleType):
        kind = _kind(obj.__name__)
        return _distribution(obj.__name__) if kind == "installed" else None
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        return None
    kind = "user" if force else _kind(module, file_of(obj))
    if kind == "installed":
        return _distribution(module)
    if kind != "user":
        return None
    local = getattr(obj, "__qualname__", getattr(obj, "__name__", "?"))
    name = f"{module_label(module)}.{local}"
    if isinstance(obj, types.FunctionType):
        refs, unresolved = _references(obj)
        form = normal_form(obj) or _code_form(obj.__code__).encode()
        return _Unit(name, digest(form), refs, unresolved, module, local)
    if isinstance(obj, type):
        refs = [base for base in obj.__bases__ if base is not object]
        refs.extend(value for value in vars(obj).values() if not isinstance(value, _SCALARS))
        return _Unit(name, digest(normal_form(obj) or local.encode()), refs, [], module, local)
    if isinstance(obj, types.BuiltinFunctionType):  # a C extension of the user's own
        return _Unit(name, digest(name.encode()), [], [f"{name} (C extension)"], module, local)
    return None


def _unwrapped(obj: Any) -> Any:
    """The function or class behind a task, method, partial, staticmethod, property, decorator
    object or instance."""
    for _ in range(8):  # wrappers of wrappers, bounded
        if isinstance(obj, (staticmethod, classmethod, types.MethodType)):
            obj = obj.__func__
        elif isinstance(obj, property):
            obj = obj.fget
        elif type(obj).__name__ == "Task" and hasattr(obj, "fn") and hasattr(obj, "cache_policy"):
            obj = obj.fn
        elif type(obj).__name__ == "partial" and hasattr(obj, "func"):
            obj = obj.func
        elif not isinstance(obj, (types.FunctionType, type)) and callable(getattr(obj, "__wrapped__", None)):
            obj = obj.__wrapped__  # a decorator's object (functools.lru_cache, say): what it wraps
        else:
            break
    if not isinstance(obj, (types.FunctionType, type, types.ModuleType, types.BuiltinFunctionType)):
        return type(obj)  # an instance: its class (a user class is followed, an installed one enters by version)
    return obj


def _references(fn: types.FunctionType) -> tuple[list[Any], list[str]]:
    """The objects a function's code loads (globals, module attributes, local imports, closure
    cells), through its nested code (lambdas, comprehensions, inner functions); and the names
    that resolve to nothing."""
    module_globals = fn.__globals__
    builtins = module_globals.get("__builtins__", {})
    builtin_names = vars(builtins) if isinstance(builtins, types.ModuleType) else builtins
    own = getattr(fn, "__module__", "?")
    own_file = module_globals.get("__file__") or fn.__code__.co_filename
    refs: list[Any] = []
    unresolved: list[str] = []
    for cell in fn.__closure__ or ():
        try:
            refs.append(_unwrapped(cell.cell_contents))
        except ValueError:  # an empty cell
            pass
    codes = [fn.__code__]
    while codes:
        code = codes.pop()
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
        local_modules: dict[str, types.ModuleType] = {}  # names bound by `import m` inside the function
        current: Any = None  # the module whose attributes the next instructions load
        path = ""
        imported: Any = None  # the module of the last IMPORT_NAME (for its IMPORT_FROMs)
        pushed: Any = _NOTHING  # what an import left on the stack, until it is stored
        consts: list[Any] = [None, None]  # the last two constants loaded (an import's level and names)
        for instruction in dis.get_instructions(code):
            op, arg = instruction.opname, instruction.argval
            if op in _LOADS_ATTR and current is not None:
                found = getattr(current, arg, _NOTHING)
                path = f"{path}.{arg}"
                if isinstance(found, types.ModuleType):
                    current = found
                    continue
                if found is not _NOTHING:
                    refs.append(_unwrapped(found))
                elif _kind(current.__name__) == "user":
                    unresolved.append(path)
                current = None
                continue
            if current is not None:  # the module itself is used (passed, or getattr with a name)
                refs.append(current)
                current = None
            if op in _LOADS_GLOBAL:
                if arg in module_globals:
                    value = module_globals[arg]
                    if isinstance(value, types.ModuleType):
                        current, path = value, arg
                    elif isinstance(value, _SCALARS) or _is_frozen(value):
                        refs.append(_Constant(own, own_file, arg, value))
                    else:
                        refs.append(_unwrapped(value))
                elif arg not in builtin_names:
                    unresolved.append(f"{own}.{arg}")
            elif op in ("LOAD_FAST", "LOAD_DEREF") and arg in local_modules:
                current, path = local_modules[arg], arg
            elif op == "LOAD_CONST":
                consts = [consts[1], arg]
            elif op == "IMPORT_NAME":
                level, names = consts
                imported = _import(arg, level if isinstance(level, int) else 0, module_globals)
                if imported is None:
                    unresolved.append(f"import {arg}")
                    pushed = _NOTHING
                elif names:  # `from m import ...`: m itself
                    pushed = imported
                else:  # `import a.b` pushes a (then `as c` takes b from it)
                    pushed = imported = sys.modules.get(arg.partition(".")[0], imported) if not level else imported
            elif op == "IMPORT_FROM" and imported is not None:
                found = getattr(imported, arg, _NOTHING)
                if found is _NOTHING:
                    found = sys.modules.get(f"{imported.__name__}.{arg}", _NOTHING)
                if found is _NOTHING:
                    unresolved.append(f"{imported.__name__}.{arg}")
                pushed = found
            elif op in _STORES and pushed is not _NOTHING:
                if isinstance(pushed, types.ModuleType):
                    local_modules[arg] = pushed
                else:
                    refs.append(_unwrapped(pushed))
                pushed = _NOTHING
        if current is not None:
            refs.append(current)
    return refs, unresolved


_NOTHING = object()


class _Constant:
    """A simple module-level value a function loads (``FACTOR = 3``): it enters by the source of
    the statements that assign it (so a value read from the environment at import does not make
    the version depend on the environment), by its repr without source."""

    __slots__ = ("name", "module", "file", "attribute", "value")

    def __init__(self, module: str, file: str, attribute: str, value: Any) -> None:
        self.name = f"{module_label(module)}.{attribute}"
        self.module, self.file = module, file
        self.attribute = attribute
        self.value = value


def _stable_repr(value: Any) -> str:
    """``repr`` of a constant, frozensets in sorted order (their iteration order follows hash seeds)."""
    if isinstance(value, frozenset):
        return "frozenset({" + ", ".join(sorted(map(_stable_repr, value))) + "})"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_stable_repr, value)) + ",)"
    return repr(value)


def module_label(module: str) -> str:
    """A module's name, or for a script run as ``__main__`` its file's stem: so that code run as
    ``python flow.py`` and loaded by ``cascade run flow.py:...`` has the same names."""
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file:
            return Path(main_file).stem
    return module


def _is_frozen(value: Any) -> bool:
    return type(value) in (tuple, frozenset) and all(isinstance(item, _SCALARS) or _is_frozen(item) for item in value)


def _import(name: str, level: int, module_globals: dict[str, Any]) -> Any:
    """The module an ``import`` inside a function loads (imported now, as the task would), or None."""
    import importlib

    try:
        if level:
            return importlib.import_module("." * level + name, module_globals.get("__package__") or None)
        return importlib.import_module(name)
    except Exception:  # its import fails here: reported as unresolved
        return None


def _code_form(code: types.CodeType) -> str:
    """A code object without line numbers: its bytecode, constants (nested code alike) and names."""
    consts = [
        _code_form(const) if isinstance(const, types.CodeType) else _stable_repr(const) for const in code.co_consts
    ]
    return repr((code.co_code.hex(), consts, code.co_names, code.co_varnames, code.co_freevars, code.co_argcount))


def _kind(module: str, file: str | None = None) -> str:
    """Whether a module is the user's ("user"), an installed distribution's ("installed"), or
    neither ("other": the standard library, builtins, Cascade); ``file``: where its code is, for a
    module that ``sys.modules`` does not hold (loaded from a file under a name of its own)."""
    kind = _kinds.get(module)
    if kind is None:
        kind = _kinds[module] = _find_kind(module, file)
    return kind


def _find_kind(module: str, hint: str | None = None) -> str:
    top = module.partition(".")[0]
    if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()) or top == "cascade_core":
        return "other"
    loaded = sys.modules.get(module) or sys.modules.get(top)
    file = getattr(loaded, "__file__", None) or hint
    if not file or file.startswith("<"):
        return "other"  # a namespace package or a module made at run time
    parts = Path(file).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return "installed"
    import sysconfig

    stdlib = sysconfig.get_paths().get("stdlib")
    if stdlib and str(Path(file).resolve()).startswith(str(Path(stdlib).resolve())):
        return "other"
    return "user"


def _distribution(module: str) -> _Unit:
    """An installed module's unit: ``<distribution>==<version>``."""
    top = module.partition(".")[0]
    name = _versions.get(top)
    if name is None:
        name = _versions[top] = _distribution_version(top)
    return _Unit(name, digest(name.encode()), [], [])


def _distribution_version(top: str) -> str:
    from importlib import metadata

    for candidate in (top, top.replace("_", "-")):
        try:
            return f"{candidate}=={metadata.version(candidate)}"
        except metadata.PackageNotFoundError:
            continue
    for dist in metadata.packages_distributions().get(top, ()):  # slower: read only when the name differs
        try:
            return f"{dist}=={metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    version = getattr(sys.modules.get(top), "__version__", "?")
    return f"{top}=={version}"
