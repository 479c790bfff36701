"""What runs on the Dask workers: a call's upstream bodies decoded there, the call run, its
result encoded; and how tasks and their functions travel (by reference, or by value with
cloudpickle for closures and tasks of scripts)."""

from __future__ import annotations

import os
import pickle
import threading
from typing import Any

from cascade_core.plugin import BackendError, Outcome, TaskCall, run_call

Encoding = Any  # TaskCall.encoding: cascade-core's Encoding (its serializer, blob store, decode())


class _Shipped:
    """What a worker needs of a task: its function (pickled by cloudpickle's rules, so tasks of
    ``__main__`` and closures travel by value), name, kind and the timeout of each attempt."""

    __slots__ = ("fn", "name", "is_async", "timeout")

    def __init__(self, task: Any) -> None:
        self.fn, self.name, self.is_async = task.fn, task.name, task.is_async
        self.timeout = getattr(task, "timeout", None)

    def __reduce__(self) -> Any:
        return _shipped, (self.fn, self.name, self.is_async, self.timeout)


class DaskValue:
    """A task's result kept on the Dask workers: the future of its ``(ok, body, duration)``.

    ``encoding``: the run's (its serializer and blob store). With a blob store the body may be
    a blob reference: whoever needs the value (a downstream on a worker, or the driver for a
    target) reads the blob.
    """

    __slots__ = ("future", "encoding")

    def __init__(self, future: Any, encoding: Encoding) -> None:
        self.future = future
        self.encoding = encoding

    def __repr__(self) -> str:
        return f"DaskValue({self.future.key!r})"


class StoredBlob:
    """A stored result whose body is a blob reference (a resumed run's upstream, say): it travels to
    the worker that needs it as the reference, and that worker reads (and verifies) the blob."""

    __slots__ = ("reference", "encoding")

    def __init__(self, reference: bytes, encoding: Encoding) -> None:
        self.reference = reference
        self.encoding = encoding  # the run's: its blob store, and whether a pickled blob may be read

    def __reduce__(self) -> Any:
        return StoredBlob, (self.reference, self.encoding)

    def __repr__(self) -> str:
        return f"StoredBlob({self.reference.decode(errors='replace')!r})"


class _Ref:
    """Stands for the ``i``-th upstream in a call sent to a worker."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i

    def __reduce__(self) -> Any:
        return _Ref, (self.i,)


def _shipped(fn: Any, name: str, is_async: bool, timeout: float | None = None) -> _Shipped:
    shipped = _Shipped.__new__(_Shipped)
    shipped.fn, shipped.name, shipped.is_async, shipped.timeout = fn, name, is_async, timeout
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
    """``value`` with each DaskValue replaced by a _Ref to its future in ``upstream`` (and each
    StoredBlob by a _Ref to itself there: the worker reads its blob)."""
    kind = type(value)
    if kind is DaskValue or kind is StoredBlob:
        key = value.future.key if kind is DaskValue else value.reference
        if key not in seen:
            seen[key] = len(upstream)
            upstream.append(value.future if kind is DaskValue else value)
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


REF_PREFIX = b"cascade-blob "  # the start of a blob reference (docs/blobs.md), never of a pickle or json body


def _decode(encoding: Encoding, body: bytes, where: str = "a result") -> Any:
    """The value of an encoded body. A blob reference: the blob is read from the run's blob store
    in this process and checked against its id first (``Encoding.decode``)."""
    if body[:13] == REF_PREFIX:
        decode = getattr(encoding, "decode", None)
        if decode is None:  # a cascade-core from before Encoding.decode
            raise BackendError(
                f"{where} is in the blob store, and this cascade-core cannot read it on a Dask worker: "
                "upgrade cascade-core, or run without blob_store="
            )
        return decode(body, where)
    if encoding.serializer == "pickle":
        return pickle.loads(body)
    import json

    return json.loads(body)


def _on_worker(call: TaskCall, upstream: list[Any]) -> TaskCall:
    if not upstream:
        return call
    encoding = call.encoding
    where = f"an input of task {call.name!r}"
    values = [
        _decode(encoding, item[1], where) if type(item) is tuple else _decode(item.encoding, item.reference, where)
        for item in upstream
    ]
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


def _run_on_worker(call: TaskCall, upstream: list[Any], inbox: tuple[str, str] | None = None) -> tuple:
    """What a Dask worker runs for a sync call: ``(ok, body or exception, duration)``."""
    return _post(_result(run_call(_on_worker(call, upstream))), inbox)


# What a worker in the driver's own process (a LocalCluster(processes=False)) leaves for the
# driver: each executor of this process has an inbox (its prefix -> {Dask key: result}), where its
# calls' results wait for it, so that it need not fetch them from the worker (a round trip per
# batch). A worker in another process finds no inbox there, and its results are fetched.
# The executor puts a None under a call's key when it submits it and takes the key out when Dask
# reports the call (finished, failed or cancelled): a worker posts only under a key still there,
# so the result of a call cancelled while it ran is dropped, not left in the inbox. _INBOX_LOCK
# makes that check and the post one step against the executor's taking.
_INBOXES: dict[str, dict[str, tuple | None]] = {}
_INBOX_LOCK = threading.Lock()


def _post(result: tuple, inbox: tuple[str, str] | None) -> tuple:
    if inbox is not None:
        box = _INBOXES.get(inbox[0])
        if box is not None:
            key = inbox[1]
            with _INBOX_LOCK:
                if key in box:  # still awaited: not reported (cancelled, say) meanwhile
                    box[key] = result
    return result
