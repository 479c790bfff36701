"""examples/shared_cache.py works as its docstring says: two drivers split one run, then the cache serves it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.redis

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shared_cache.py"


def _start(uri: str, run_id: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SIMULATE_SECONDS": "0.3", "CASCADE_SECRET_KEY": "example-secret"}
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), uri, run_id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _counts(line: str) -> dict[str, int]:
    return {name: int(value) for value, name in re.findall(r"(\d+) (\w+)", line.split("(", 1)[1])}


def test_two_drivers_split_the_run_then_the_cache_serves_it(redis_uri):
    drivers = [_start(redis_uri, "shared") for _ in range(2)]
    outputs = [driver.communicate(timeout=120) for driver in drivers]
    assert [driver.returncode for driver in drivers] == [0, 0], outputs
    means = {re.search(r"mean=(\S+)", out).group(1) for out, _ in outputs}
    assert len(means) == 1
    executed = sum(_counts(out).get("executed", 0) for out, _ in outputs)
    assert executed == 13  # 12 simulations and the mean, each run once across both drivers
    again = _start(redis_uri, "again")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert _counts(out).get("cached") == 12 and re.search(r"mean=(\S+)", out).group(1) in means
