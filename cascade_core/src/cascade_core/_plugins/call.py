"""One attempt of one task: what the engine hands an executor, and what comes back.

A :class:`TaskCall` carries everything the attempt needs (the task, its inputs already
substituted, the attempt number and how to encode the result), so an executor may run it
in a worker thread, on an event loop or in another process; :func:`run_call` (or
:func:`run_call_async` for ``async def`` tasks) runs it there and returns an
:class:`Outcome`. Nothing in here reads a backend, a secret or a global of the driver:
the driver seals and stores what comes back (docs/executors.md).
"""

from __future__ import annotations

import pickle
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .._errors import BackendUnavailableError, IntegrityError, SerializationError, TaskTimeout
from .._masking import mask_uri_text
from .._store.serializers import SERIALIZER_CODES, dumps, is_reference

_SERIALIZERS = tuple(SERIALIZER_CODES)


@dataclass(frozen=True)
class Encoding:
    """How a result becomes the bytes the state backend stores: a serializer and a size limit.

    ``limit_option`` names the backend option that raises the limit, for the error message.
    ``blobs``: the run's blob store (its URI, opened once per process: docs/blobs.md); a body
    over ``threshold`` bytes is written there and replaced by its reference.
    """

    serializer: str = "pickle"
    max_bytes: int | None = None
    limit_option: str | None = None
    blobs: str | None = field(default=None, repr=False)  # may hold credentials: never shown
    threshold: int = 1 << 20

    def encode(self, task_name: str, value: Any) -> bytes:
        """The serialized bytes of ``value``; raise SerializationError naming the task otherwise."""
        try:
            body = dumps(self.serializer, value)
        except Exception as exc:  # pickle and json raise many exception types
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            error = SerializationError(
                f"result of task {task_name!r} cannot be stored: {type(value).__name__} value cannot be "
                f"serialized with {self.serializer}: {reason}"
            )
            raise error from exc
        if self.blobs is not None and len(body) > self.threshold:
            from .._store.blob_refs import make_reference

            body = make_reference(self.blobs, body, SERIALIZER_CODES[self.serializer])
        if self.max_bytes is not None and len(body) > self.max_bytes:
            raise SerializationError(
                f"result of task {task_name!r} is {len(body)} bytes, over the state backend's limit of "
                f"{self.max_bytes} bytes: return a smaller value or {raise_limit(self.limit_option)}"
            )
        return body

    def decode(self, body: bytes, where: str = "a result") -> Any:
        """The value of a body that :meth:`encode` made, for executors whose workers receive upstream
        bodies (Dask). A blob reference: the blob is read from the run's blob store (opened once per
        process) and checked against its id first; a pickled blob is refused when the serializer
        is json. ``where`` names the value in error messages."""
        serializer = self.serializer
        if is_reference(body):
            from .._store.blob_refs import BlobSpec, dereference, open_store

            blobs = self.blobs
            spec = None if blobs is None else BlobSpec(blobs, mask_uri_text(blobs), self.threshold, open_store(blobs))
            code, body = dereference(spec, where, body)
            if code == b"p" and serializer != "pickle":
                raise IntegrityError(
                    f"{where} is in a pickled blob, but the serializer is json: refusing to read it "
                    "(it may have been planted; delete the stored result, or rerun to recompute it)",
                    key=where,
                )
            serializer = "pickle" if code == b"p" else "json"
        if serializer == "pickle":
            return pickle.loads(body)
        import json

        return json.loads(body)


def raise_limit(option: str | None) -> str:
    """How to let a backend store more: raise the option it names as ``max_payload_option``."""
    return f"raise the backend's {option}" if isinstance(option, str) and option else "use a backend that allows more"


@dataclass(slots=True)
class TaskCall:
    """One attempt of one task. Picklable whenever the task's function and its inputs are.

    ``args`` and ``kwargs`` hold the inputs with every upstream result substituted: values
    for executors that run in the driver's process, or the executor's own handles to them
    (for example Dask futures) for executors that keep values where they were computed.
    """

    index: int  # the node's position in the run's graph: how the driver matches the outcome
    node_id: str
    task: Any  # cascade_core.Task: its fn, name and is_async are used here
    args: tuple
    kwargs: dict
    attempt: int = 0  # 0 for the first attempt; retries are the engine's, never the executor's
    encoding: Encoding = Encoding()

    @property
    def name(self) -> str:
        """The task's name."""
        return self.task.name

    @property
    def is_async(self) -> bool:
        return self.task.is_async


@dataclass(slots=True)
class Outcome:
    """What one :class:`TaskCall` produced.

    ``ok``: the task returned and its result encoded; then ``value`` is the result (or the
    executor's handle to it) and ``body`` its serialized bytes. Otherwise ``value`` is the
    exception and ``body`` is None. ``duration``: seconds spent in the call and the encoding.
    """

    index: int
    ok: bool
    value: Any
    body: bytes | None
    duration: float
    attempt: int = 0


def run_call(call: TaskCall) -> Outcome:
    """Run a synchronous task call and encode its result; never raises for the task's errors.

    ``KeyboardInterrupt`` and ``SystemExit`` come back as failed outcomes too: the engine
    decides that they stop the run.
    """
    timeout = getattr(call.task, "timeout", None)
    if timeout is not None:  # docs/concepts.md, "Limits"

        return run_with_timeout(call, timeout)
    started = time.perf_counter()
    try:
        value = call.task.fn(*call.args, **call.kwargs)
    except BaseException as exc:
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    return finish_call(call, value, started)


async def run_call_async(call: TaskCall) -> Outcome:
    """Await an ``async def`` task call on the running loop and encode its result."""
    timeout = getattr(call.task, "timeout", None)
    if timeout is not None:

        return await run_async_with_timeout(call, timeout)
    started = time.perf_counter()
    try:
        value = await call.task.fn(*call.args, **call.kwargs)
    except BaseException as exc:  # CancelledError included: the engine decides what it means
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    return finish_call(call, value, started)


class ReturnedGraph(Exception):
    """Not an error: the outcome of a task that returned lazy results (a graph the run adds).

    It travels as a failed outcome, so that every executor carries it back unchanged (a Dask
    worker pickles it); the scheduler expands it instead of failing the node.
    """

    def __init__(self, shape: Any) -> None:
        super().__init__(shape)
        self.shape = shape


def finish_call(call: TaskCall, value: Any, started: float) -> Outcome:
    """The outcome of a call that returned ``value``: encoded, or the reason it cannot be stored."""
    from .._build.dynamic import returns_graph

    if returns_graph(value):
        return Outcome(call.index, False, ReturnedGraph(value), None, time.perf_counter() - started, call.attempt)
    try:
        body = call.encoding.encode(call.name, value)
    except (SerializationError, BackendUnavailableError) as exc:  # the latter: a blob store that failed
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    return Outcome(call.index, True, value, body, time.perf_counter() - started, call.attempt)


# -- one attempt under a task's timeout= ------------------------------------------------
# One attempt under a task's ``timeout=``: cancelled (async) or abandoned (sync) at its deadline.
#
# Python cannot interrupt a thread, so a sync attempt runs in a daemon thread of its own while
# the caller waits for it until the deadline; past it, the attempt fails with TaskTimeout and
# the thread is left to finish on its own, its result discarded (docs/concepts.md, "Limits").
# The wait is an ``Event.wait``, which Ctrl-C interrupts in the main thread. An async attempt
# is a task on the running loop, cancelled at the deadline.


def run_with_timeout(call: TaskCall, timeout: float) -> Outcome:
    """``run_call`` of a sync call under ``timeout`` seconds."""
    started = time.perf_counter()
    box: list[tuple[bool, Any]] = []
    done = threading.Event()

    def attempt() -> None:
        try:
            box.append((True, call.task.fn(*call.args, **call.kwargs)))
        except BaseException as exc:  # the caller decides what it means
            box.append((False, exc))
        done.set()

    thread = threading.Thread(target=attempt, name=f"cascade-attempt {call.name}", daemon=True)
    try:
        thread.start()
        finished = done.wait(timeout)
    except BaseException as exc:  # Ctrl-C while waiting: the engine stops the run
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    if not finished:
        error = TaskTimeout(call.name, timeout, call.attempt)
        return Outcome(call.index, False, error, None, time.perf_counter() - started, call.attempt)
    ok, value = box[0]
    if not ok:
        return Outcome(call.index, False, value, None, time.perf_counter() - started, call.attempt)
    return finish_call(call, value, started)


async def run_async_with_timeout(call: TaskCall, timeout: float) -> Outcome:
    """``run_call_async`` under ``timeout`` seconds: the coroutine is cancelled at the deadline."""
    import asyncio

    started = time.perf_counter()
    task = asyncio.ensure_future(call.task.fn(*call.args, **call.kwargs))
    try:
        finished, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException as exc:  # the awaiting run was cancelled: so is the attempt
        task.cancel()
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    if not finished:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)  # let it clean up; one that ignores cancel is left
        error = TaskTimeout(call.name, timeout, call.attempt)
        return Outcome(call.index, False, error, None, time.perf_counter() - started, call.attempt)
    try:
        value = task.result()
    except BaseException as exc:
        return Outcome(call.index, False, exc, None, time.perf_counter() - started, call.attempt)
    return finish_call(call, value, started)
