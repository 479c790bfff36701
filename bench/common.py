"""Timing, a private redis-server, machine and version facts, a discarding state backend."""

from __future__ import annotations

import gc
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------- timing


class Seconds(float):
    """What a case returns when it timed itself (to leave its setup out of the measurement)."""


def interleave(cases: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run the cases round-robin (A, B, C, A, B, C, ...) and return every case's timings.

    A case returns ``Seconds(...)`` when it measured itself; anything else is timed around the call.
    The first ``warmup`` rounds are discarded.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(warmup + repeats):
        for name, case in cases.items():
            gc.collect()
            started = time.perf_counter()
            measured = case()
            elapsed = float(measured) if isinstance(measured, Seconds) else time.perf_counter() - started
            if round_ >= warmup:
                times[name].append(elapsed)
    return times


def per_task_rows(result: Any, times: Mapping[str, list[float]], n: int, label: str) -> dict[str, float]:
    """Each case's median in µs per task (of ``n``), each also a row of ``result`` named ``label: case``."""
    per = {name: median(runs) / n * 1e6 for name, runs in times.items()}
    for name, runs in times.items():
        result.rows.append(Row(f"{label}: {name}", per[name], "µs/task", "", len(runs)))
    return per


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """min-max of the runs as a short string, in the unit of the caller's scaling."""
    return f"{min(values):.3g}-{max(values):.3g}"


@dataclass
class Row:
    """One line of a scenario's table."""

    label: str
    value: float
    unit: str
    note: str = ""
    runs: int = 0


@dataclass
class Target:
    name: str
    measured: str
    goal: str
    met: bool | None  # None: not applicable / not measurable here
    # A wall-clock target "ratio <= bound": `--check` can allow for a noisy machine.
    ratio: float | None = None
    bound: float | None = None
    checked: bool = True  # False: reported (and judged by the full run) but not failed by `--check`

    def holds(self, tolerance: float) -> bool:
        """Met, or (for a wall-clock ratio) within ``tolerance`` times its bound."""
        if not self.checked:
            return True
        if self.ratio is not None and self.bound is not None:
            return self.ratio <= self.bound * tolerance
        return self.met is not False


@dataclass
class Result:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    plot: dict[str, Any] | None = None
    seconds: float = 0.0


# --------------------------------------------------------------------------- redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` on a free port (never the shared one on 6379), stopped on exit."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="cascade-bench-redis-")

    @property
    def available(self) -> bool:
        return self.binary is not None

    def __enter__(self) -> RedisServer:
        import redis

        assert self.binary, "redis-server is not on the PATH"
        for _ in range(5):
            self.port = free_port()
            if self.port == 6379:
                continue
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self.dir,
                    "--daemonize",
                    "no",
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = redis.Redis(port=self.port)
            for _ in range(100):
                try:
                    client.ping()
                    client.close()
                    return self
                except redis.ConnectionError:
                    if self.proc.poll() is not None:
                        break
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("could not start redis-server")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis(port=self.port, db=db)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def commandstats(client: Any) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats), INFO itself left out."""
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    calls.pop("info", None)
    return calls


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    out = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    return {name: count for name, count in sorted(out.items()) if count}


def format_commands(counts: dict[str, int]) -> str:
    return ", ".join(f"{name.upper()} {count}" for name, count in counts.items()) or "none"


# --------------------------------------------------------------------------- a state backend that keeps nothing


class NullState:
    """A StateBackend that discards every write: measures the engine without storage."""

    trusted_store = True
    serializer = "pickle"

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def put_results(self, results: Mapping[str, bytes]) -> None:
        pass

    def get_results(self, node_ids: Any) -> dict[str, bytes]:
        return {}

    def result_ids(self) -> set[str]:
        return set()

    def mark_skipped(self, reasons: Mapping[str, str]) -> None:
        pass

    def get_skip_reasons(self) -> dict[str, str]:
        return {}

    def set_run_info(self, info: Mapping[str, str]) -> None:
        pass

    def get_run_info(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


def null_state(run_id: str) -> NullState:
    return NullState(run_id)


# --------------------------------------------------------------------------- machine and versions


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    mem = ""
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def versions() -> dict[str, str]:
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in ("cascade-core", "cascade-redis", "dask", "prefect", "redis", "hiredis", "matplotlib"):
        try:
            out[dist if dist != "redis" else "redis-py"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist if dist != "redis" else "redis-py"] = "not installed"
    binary = shutil.which("redis-server")
    if binary:
        text = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        token = next((part for part in text.split() if part.startswith("v=")), "v=?")
        out["redis-server"] = token[2:]
    else:
        out["redis-server"] = "not installed"
    return out


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python() -> str:
    return sys.executable


def run_prefect(args: list[str], timeout: float) -> dict:
    """Run a Prefect benchmark worker (``python -m bench.<worker> args...``) in a subprocess with a
    fresh PREFECT_HOME (a local ephemeral server, no analytics, errors only) and return the JSON
    line it prints, or ``{"error": ...}``."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    home = tempfile.mkdtemp(prefix="cascade-bench-prefect-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": home,
            "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "ERROR",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "ERROR",
        }
    )
    try:
        proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"prefect run failed: {tail[:200]}"}


def standalone(run: Callable[[bool], Result], args: list[str]) -> int:
    """``python -m bench.<scenario> [--quick] [--check]``: run one scenario, print its rows and
    targets; with ``--check``, exit 1 unless every target is met."""
    result = run("--quick" in args)
    for row in result.rows:
        print(f"{row.label}: {row.value:.4g} {row.unit}")
    for target in result.targets:
        print(f"target: {target.name}: {target.measured} (goal {target.goal}) {'met' if target.met else 'MISSED'}")
    for note in result.notes:
        print(note)
    if "--check" in args:
        ok = bool(result.targets) and all(target.met for target in result.targets)
        print("targets met" if ok else "targets MISSED")
        return 0 if ok else 1
    return 0
