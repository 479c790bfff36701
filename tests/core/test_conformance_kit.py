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
    # A store runs no tasks; sqlite:// keeps no blobs.
    executor_skips = [line for line in skips if "provides no executor" in line]
    backend_skips = [line for line in skips if "provides no executor" not in line and "provides no blobs" not in line]
    assert len(executor_skips) == EXECUTOR_TESTS, skips
    # Only optional capabilities may be skipped (memory:// records no timestamps); the core contract never.
    assert all("optional capability" in line for line in backend_skips), skips
    if scheme == "sqlite":
        assert backend_skips == [], skips


EXECUTOR_TESTS = 11  # the tests of testing/test_executor_contract.py


@pytest.mark.parametrize("uri", ["threads://", "threads://?max_workers=2", "inline://"])
def test_builtin_executor_passes_the_kit(uri, tmp_path):
    result = run_kit("--cascade-uri", uri, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert count("passed", result.stdout) == EXECUTOR_TESTS, output
    assert count("failed", result.stdout) == count("error", result.stdout) == 0, output
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    # Everything else is the state and cache contract, which an executor does not provide.
    assert skips and all(
        "provides no state" in line or "provides no cache" in line or "provides no blobs" in line for line in skips
    ), skips


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if "error" in line.lower()]


def test_without_a_uri_the_kit_refuses_to_run(tmp_path):
    result = run_kit(cwd=tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    assert error_lines(result) == [
        "ERROR: the Cascade conformance kit needs a backend to test: "
        "python -m pytest --pyargs cascade_core.testing --cascade-uri URI"
    ]
    assert count("passed", result.stdout) == count("skipped", result.stdout) == 0


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("nosuch://x", "ERROR: --cascade-uri: unknown backend scheme 'nosuch'; installed schemes: "),
        ("not a uri", "ERROR: --cascade-uri: malformed backend URI 'not a uri': expected 'scheme://...'"),
        ("sqlite:///no/such/dir/kit.db", "ERROR: --cascade-uri: directory "),
        ("sqlite:///not-a-database.txt", "ERROR: --cascade-uri: sqlite database "),
        (
            "memory://user:pa55word@store?bogus=1",
            "ERROR: --cascade-uri: unknown option 'bogus' in memory:// URI memory://user:***@store?bogus=1;",
        ),
    ],
)
def test_a_uri_that_does_not_resolve_stops_the_kit_with_one_line(uri, expected, tmp_path):
    (tmp_path / "not-a-database.txt").write_text("just text, not sqlite\n" * 100)
    result = run_kit("--cascade-uri", uri, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    (line,) = error_lines(result)
    assert line.startswith(expected), line
    assert "pa55word" not in output
    assert count("passed", result.stdout) == count("skipped", result.stdout) == 0


def test_other_sessions_are_not_held_to_it(tmp_path):
    # A plugin's own suite that uses the kit's fixtures runs without --cascade-uri: they skip.
    (tmp_path / "test_own.py").write_text(
        "def test_plain():\n    assert True\n\n\n"
        "def test_with_backend(cascade_state_backend):\n    cascade_state_backend.put_results({'a': b'1'})\n"
    )
    own = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "test_own.py"]
    result = subprocess.run(own, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (count("passed", result.stdout), count("skipped", result.stdout)) == (1, 1)
    # Listing the kit's tests needs no backend either.
    listing = run_kit("--collect-only", cwd=tmp_path)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "test_round_trip_varied_payloads" in listing.stdout


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
