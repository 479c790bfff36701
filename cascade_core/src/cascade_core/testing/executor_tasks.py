"""Tasks the executor contract runs. They live in an importable module (not in the test file)
so that executors whose workers are other processes can import them by name."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import cascade_core as cs


def _mark(folder: str, name: str) -> None:
    """Leave a file behind: side effects are counted in a folder, which works across processes."""
    Path(folder, f"{name}-{os.getpid()}-{time.monotonic_ns()}").touch()


def count(folder: str, name: str) -> int:
    return sum(1 for path in Path(folder).iterdir() if path.name.startswith(f"{name}-"))


@cs.task
def inc(x: int) -> int:
    return x + 1


@cs.task
def total(values: list[int]) -> int:
    return sum(values)


@cs.task
def step(folder: str, done: list[int], i: int) -> list[int]:
    """Appends ``i``; records when it started and ended, to check ordering."""
    started = time.time()
    time.sleep(0.005)
    Path(folder, f"step{i:03d}").write_text(f"{started} {time.time()}")
    return [*done, i]


@cs.task
def echo(*args: Any, **kwargs: Any) -> tuple[tuple, dict]:
    return args, kwargs


@cs.task
def with_default(a: int, b: int = 10) -> int:
    return a * b


@cs.task
def fail(message: str) -> None:
    raise ValueError(message)


@cs.task
def after(value: Any) -> Any:
    return value


@cs.task(retries=2, retry_delay=0.01)
def flaky(folder: str, failures: int) -> int:
    """Fails its first ``failures`` attempts, then returns how many attempts it took."""
    _mark(folder, "flaky")
    attempts = count(folder, "flaky")
    if attempts <= failures:
        raise ConnectionError(f"attempt {attempts} failed")
    return attempts


@cs.task
async def async_double(x: int) -> int:
    await asyncio.sleep(0.001)
    return 2 * x


@cs.task
def slow(folder: str, i: int) -> int:
    _mark(folder, "slow-start")
    time.sleep(0.2)
    _mark(folder, "slow-end")
    return i


@cs.task
def sleeper(folder: str, i: int, seconds: float) -> int:
    """Sleeps ``seconds``; marks its start and end (for the cancellation test)."""
    _mark(folder, "sleeper-start")
    time.sleep(seconds)
    _mark(folder, "sleeper-end")
    return i


@cs.task
def unpicklable_result() -> Any:
    return threading.Lock()


class LockedError(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


@cs.task
def unpicklable_error() -> None:
    raise LockedError("an error that cannot be pickled")


@cs.task
def exit_worker(driver_pid: int) -> str:
    """Kills the worker process it runs in; in the driver's own process it returns instead."""
    if os.getpid() != driver_pid:
        os._exit(13)
    return "in the driver"
