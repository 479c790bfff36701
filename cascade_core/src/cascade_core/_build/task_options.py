"""The execution-limit options of a task, checked once when the task is defined.

``timeout=`` (seconds per attempt), ``resources=`` (name -> amount the task needs of the
run's totals) and ``limits=`` (names of limits kept in the state backend): docs/concepts.md,
"Limits". Every bad value is a DefinitionError of one line naming the task and the option.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._errors import DefinitionError
from .._uri import LIMIT_NAME, MAX_SECONDS


def _positive(value: Any) -> bool:
    """A finite number greater than 0 (not a bool)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


def checked_timeout(label: str, timeout: Any) -> float | None:
    """``timeout=``: None, or seconds greater than 0 and at most 10 years."""
    if timeout is None:
        return None
    if not _positive(timeout) or timeout > MAX_SECONDS:
        raise DefinitionError(
            f"task {label!r}: timeout must be a number of seconds greater than 0 and at most {MAX_SECONDS} "
            f"(10 years), got {timeout!r}"
        )
    return float(timeout)


def checked_name(what: str, name: Any) -> str:
    """A limit or resource name: letters, digits, '_', '.', '-', at most 100 characters."""
    if not isinstance(name, str) or not LIMIT_NAME.fullmatch(name):
        raise DefinitionError(
            f"{what} name {name!r} must be 1 to 100 letters, digits, '_', '.' or '-' (starting with a letter or digit)"
        )
    return name


def checked_amounts(what: str, amounts: Any) -> dict[str, float]:
    """A mapping of resource name -> a finite amount greater than 0 (``what`` names its owner)."""
    if not isinstance(amounts, Mapping):
        raise DefinitionError(f"{what}: resources must be a dict such as {{'gpu': 1}}, got {amounts!r}")
    checked = {}
    for name, amount in amounts.items():
        checked_name(f"{what}: resource", name)
        if not _positive(amount):
            raise DefinitionError(f"{what}: resource {name!r} must be a finite number greater than 0, got {amount!r}")
        checked[name] = float(amount)
    return checked


def checked_resources(label: str, resources: Any) -> dict[str, float]:
    """``resources=`` of a task: {} when none."""
    return {} if resources is None else checked_amounts(f"task {label!r}", resources)


def checked_limits(label: str, limits: Any) -> tuple[str, ...]:
    """``limits=``: a list of limit names (sorted, without repeats: the order slots are taken in)."""
    if limits is None:
        return ()
    if isinstance(limits, str) or not isinstance(limits, (list, tuple, set, frozenset)):
        raise DefinitionError(f"task {label!r}: limits must be a list of names such as ['openai'], got {limits!r}")
    return tuple(sorted({checked_name(f"task {label!r}: limit", name) for name in limits}))
