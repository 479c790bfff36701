"""A graph's params: declared by the Param objects its calls take, given by the caller, checked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._errors import ParamError
from .dynamic import Routes
from .lazy import condition_of
from .task import MISSING, LazyResult, Param

_CONTAINERS = (list, tuple, dict, set, frozenset)


def resolve_params(lazies: Iterable[LazyResult], given: Mapping[str, Any]) -> dict[str, Any]:
    declared: dict[str, Param] = {}
    for lazy in lazies:
        if lazy.has_params:
            for param in params_in(lazy):
                other = declared.setdefault(param.name, param)
                if other is not param and (other.default != param.default or other.type != param.type):
                    raise ParamError(
                        f"param {param.name!r} is declared twice with different defaults or types: "
                        "create one Param object and reuse it",
                        param=param.name,
                    )
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ParamError(f"unknown param {unknown[0]!r}; this graph's params are: {known}", param=unknown[0])
    values: dict[str, Any] = {}
    for name, param in declared.items():
        if name in given:
            values[name] = convert_param(param, given[name])
        elif param.required:
            raise ParamError(
                f"missing param {name!r}: pass params={{{name!r}: ...}} to run() (or --param {name}=VALUE)",
                param=name,
            )
        else:
            values[name] = param.default
    return values


def params_in(lazy: LazyResult) -> Iterable[Param]:
    pending: list[Any] = [*lazy.args, *lazy.kwargs.values(), condition_of(lazy)]
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind is Param:
            yield value
        elif kind is Routes:
            for route in value.reachable():
                if route.has_params:
                    pending.extend([*route.args, *route.kwargs.values(), condition_of(route)])
        elif kind in _CONTAINERS:
            pending.extend(value.values() if kind is dict else value)
            if kind is dict:
                pending.extend(value.keys())


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert_param(param: Param, value: Any) -> Any:
    """Check ``value`` against the param's type; strings (from the CLI) are converted."""
    kind = param.type
    if kind is None or value is MISSING:
        return value
    if isinstance(kind, type) and isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if isinstance(value, str):
        try:
            if kind is bool:
                lowered = value.strip().lower()
                if lowered in _TRUE | _FALSE:
                    return lowered in _TRUE
                raise ValueError("expected true or false")
            return kind(value)
        except (TypeError, ValueError) as exc:
            type_name = getattr(kind, "__name__", repr(kind))
            raise ParamError(
                f"param {param.name!r} expects {type_name}, and {value!r} does not convert: {exc}",
                param=param.name,
            ) from None
    if not isinstance(kind, type):  # a converter function
        try:
            return kind(value)
        except (TypeError, ValueError) as exc:
            raise ParamError(
                f"param {param.name!r}: {value!r} was refused by its type: {exc}", param=param.name
            ) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise ParamError(
        f"param {param.name!r} expects {kind.__name__}, got {type(value).__name__} {value!r}",
        param=param.name,
    )
