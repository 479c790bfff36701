"""What runs on the Dask workers: a call's upstream bodies decoded there, the call run, its
result encoded; and how tasks and their functions travel (by reference, or by value with
cloudpickle for closures and tasks of scripts)."""

from __future__ import annotations

import os
import pickle
from typing import Any

from cascade_core.plugin import Outcome, TaskCall, run_call


class _Shipped:
    """What a worker needs of a task: its function (pickled by cloudpickle's rules, so tasks of
    ``__main__`` and closures travel by value), name and kind."""

    __slots__ = ("fn", "name", "is_async")

    def __init__(self, task: Any) -> None:
        self.fn, self.name, self.is_async = task.fn, task.name, task.is_async

    def __reduce__(self) -> Any:
        return _shipped, (self.fn, self.name, self.is_async)


class DaskValue:
    """A task's result kept on the Dask workers: the future of its ``(ok, body, duration)``."""

    __slots__ = ("future", "serializer")

    def __init__(self, future: Any, serializer: str) -> None:
        self.future = future
        self.serializer = serializer

    def __repr__(self) -> str:
        return f"DaskValue({self.future.key!r})"


class _Ref:
    """Stands for the ``i``-th upstream in a call sent to a worker."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i

    def __reduce__(self) -> Any:
        return _Ref, (self.i,)


def _shipped(fn: Any, name: str, is_async: bool) -> _Shipped:
    shipped = _Shipped.__new__(_Shipped)
    shipped.fn, shipped.name, shipped.is_async = fn, name, is_async
    return shipped


def _ship_by_value(cloudpickle: Any, fn: Any) -> None:
    """Pickle the functions of a script or of a module beside it by value, as Dask does for ``__main__``:
    workers cannot import a flow file that ``cascade run flow.py:...`` loaded by its path."""
    import sys
    import sysconfig

    name = getattr(fn, "__module__", None) or ""
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if module is None or not file or "." in name or name == "__main__":
        return
    installed = {sysconfig.get_paths()[kind] for kind in ("stdlib", "platstdlib", "purelib", "platlib")}
    if not any(os.path.abspath(file).startswith(os.path.abspath(path) + os.sep) for path in installed):
        cloudpickle.register_pickle_by_value(module)


def _pickle_error(cloudpickle: Any, value: Any) -> str | None:
    try:
        cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # pickling raises many exception types
        return (str(exc).splitlines() or [type(exc).__name__])[0]
    return None


def _detach(value: Any, upstream: list[Any], seen: dict[Any, int]) -> Any:
    """``value`` with each DaskValue replaced by a _Ref to its future in ``upstream``."""
    kind = type(value)
    if kind is DaskValue:
        key = value.future.key
        if key not in seen:
            seen[key] = len(upstream)
            upstream.append(value.future)
        return _Ref(seen[key])
    if kind is tuple or kind is list:
        return kind([_detach(item, upstream, seen) for item in value])
    if kind is dict:
        return {_detach(k, upstream, seen): _detach(v, upstream, seen) for k, v in value.items()}
    if kind is set or kind is frozenset:
        return kind(_detach(item, upstream, seen) for item in value)
    return value


def _attach(value: Any, values: list[Any]) -> Any:
    """The inverse of _detach, on the worker: each _Ref replaced by its upstream's value."""
    kind = type(value)
    if kind is _Ref:
        return values[value.i]
    if kind is tuple or kind is list:
        return kind([_attach(item, values) for item in value])
    if kind is dict:
        return {_attach(k, values): _attach(v, values) for k, v in value.items()}
    if kind is set or kind is frozenset:
        return kind(_attach(item, values) for item in value)
    return value


def _decode(serializer: str, body: bytes) -> Any:
    if serializer == "pickle":
        return pickle.loads(body)
    import json

    return json.loads(body)


def _on_worker(call: TaskCall, upstream: list[tuple]) -> TaskCall:
    if not upstream:
        return call
    serializer = call.encoding.serializer
    values = [_decode(serializer, body) for _, body, _ in upstream]
    kwargs = _attach(call.kwargs, values) if call.kwargs else call.kwargs
    return TaskCall(
        call.index, call.node_id, call.task, _attach(call.args, values), kwargs, call.attempt, call.encoding
    )


def _result(outcome: Outcome) -> tuple:
    if outcome.ok:
        return True, outcome.body, outcome.duration
    error = outcome.value
    try:
        pickle.dumps(error)
    except Exception:  # the exception must travel back to the driver
        error = RuntimeError(f"{type(error).__name__}: {error}")
    return False, error, outcome.duration


def _run_on_worker(call: TaskCall, upstream: list[tuple]) -> tuple:
    """What a Dask worker runs for a sync call: ``(ok, body or exception, duration)``."""
    return _result(run_call(_on_worker(call, upstream)))
