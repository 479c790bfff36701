"""The conformance kit runs as plugin authors run it, and the built-in backends pass it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

# -W error: the kit runs outside this repository's config (cwd is a temporary directory).
KIT = [sys.executable, "-m", "pytest", "--pyargs", "cascade_core.testing", "-q", "-rs", "-W", "error"]


def run_kit(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KIT, "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def count(word: str, output: str) -> int:
    match = re.search(rf"(\d+) {word}", output.splitlines()[-1])
    return int(match[1]) if match else 0


@pytest.mark.parametrize("scheme", ["memory", "sqlite"])
def test_builtin_backend_passes_the_kit(scheme, tmp_path):
    uri = "memory://" if scheme == "memory" else f"sqlite:///{tmp_path / 'kit.db'}"
    result = run_kit("--cascade-uri", uri, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert count("passed", result.stdout) >= 15, output
    assert count("failed", result.stdout) == count("error", result.stdout) == 0, output
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    # Only optional capabilities may be skipped (memory:// records no timestamps); the core contract never.
    assert all("optional capability" in line for line in skips), skips
    if scheme == "sqlite":
        assert skips == [], skips


def test_without_a_uri_the_kit_is_skipped_with_a_reason(tmp_path):
    result = run_kit(cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert count("passed", result.stdout) == 0
    assert count("skipped", result.stdout) >= 15
    assert "pass --cascade-uri URI" in result.stdout


def test_the_plugin_is_light_at_import():
    # Every pytest session loads the plugin: it may add nothing of Cascade to what importing the package loads.
    code = (
        "import sys, pytest, cascade_core\n"
        "before = set(sys.modules)\n"
        "import cascade_core.testing.plugin\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('cascade') or m == 'sqlite3'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['cascade_core.testing', 'cascade_core.testing.plugin']"


def test_the_option_is_registered(pytestconfig):
    # This very session loaded the plugin through the pytest11 entry point.
    assert pytestconfig.getoption("--cascade-uri") is None
    assert pytestconfig.pluginmanager.has_plugin("cascade")
