"""Plugin discovery through real installed distributions (tests/plugins/*), never monkeypatched.

The plugin distributions are pip-installed into a temporary directory that subprocesses put
on their path, so importlib.metadata finds their real entry-point metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "tests" / "plugins"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-src")
    sources = []
    for name in ("good", "broken", "dup_a", "dup_b"):
        # Build from a copy so no build/ or egg-info lands in the repository.
        shutil.copytree(PLUGINS / name, build / name)
        sources.append(str(build / name))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--target",
            str(site),
            *sources,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return site


def _run(
    site: Path | None, args: list[str], tmp_path: Path, extra_env: dict[str, str] | None = None, code: str | None = None
) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = tmp_path / f"imports-{os.urandom(4).hex()}.log"
    env = {**os.environ, "CASCADE_TEST_IMPORT_LOG": str(log), "PYTHONWARNINGS": "default"}
    env.pop("CASCADE_BACKEND_PREFER", None)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(extra_env or {})
    command = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "cascade_core", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    imported = log.read_text().split() if log.exists() else []
    return result, imported


def test_listing_shows_installed_plugins_without_importing_them(plugin_site, tmp_path):
    result, imported = _run(plugin_site, ["backends", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["scheme"]: row for row in json.loads(result.stdout)}
    assert imported == []
    good = rows["goodmem"]
    assert good == {
        "scheme": "goodmem",
        "distribution": "cascade-plugin-good",
        "version": "1.2.3",
        "target": "cascade_plugin_good:provider",
        "provides": ["state", "cache"],
        "status": "available",
        "error": None,
    }
    assert rows["memory"]["distribution"] == "cascade-core"
    assert rows["broken"]["status"] == "available"
    assert rows["dup"]["status"] == "conflict: also claimed by cascade-plugin-dup-b"
    assert set(rows) >= {"memory", "sqlite", "goodmem", "broken", "dup"}

    table, imported = _run(plugin_site, ["backends"], tmp_path)
    assert table.returncode == 0 and imported == []
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["SCHEME", "DISTRIBUTION", "VERSION", "TARGET", "PROVIDES", "STATUS"]
    assert any(line.split()[:3] == ["goodmem", "cascade-plugin-good", "1.2.3"] for line in lines)


def test_check_imports_and_validates_every_provider(plugin_site, tmp_path):
    result, imported = _run(plugin_site, ["backends", "--check", "--json"], tmp_path)
    assert result.returncode == 1  # the broken plugin fails its check
    rows = {row["scheme"]: row for row in json.loads(result.stdout)}
    assert rows["goodmem"]["status"] == "ok"
    assert rows["broken"]["status"] == "error"
    assert (
        "cascade-plugin-broken" in rows["broken"]["error"] and "a_module_that_does_not_exist" in rows["broken"]["error"]
    )
    assert rows["nohooks"]["status"] == "error" and "implements no hook" in rows["nohooks"]["error"]
    assert rows["memory"]["status"] == "ok"
    assert "cascade_plugin_good" in imported


def test_a_third_party_scheme_runs_a_workflow_and_imports_only_its_provider(plugin_site, tmp_path):
    code = (
        "import sys, cascade_core as cs\n"
        "@cs.task(cache=True)\n"
        "def double(x):\n"
        "    print('ran', x)\n"
        "    return 2 * x\n"
        "print(cs.run(double(21), state_backend='GoodMem://one', cache_backend='goodmem://one'))\n"
        "print(cs.run(double(21), state_backend='goodmem://one', cache_backend='goodmem://one'))\n"
        "prefixes = ('cascade_plugin', 'cascade_redis', 'redis', 'sqlite3')\n"
        "print(sorted(m for m in sys.modules if m.startswith(prefixes)))\n"
    )
    result, imported = _run(plugin_site, [], tmp_path, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ran 21", "42", "42", "['cascade_plugin_good']"]
    assert imported == ["cascade_plugin_good"]  # imported once, though used four times


def test_a_plugin_that_fails_to_import_breaks_only_its_scheme(plugin_site, tmp_path):
    code = (
        "import cascade_core as cs\n"
        "@cs.task\n"
        "def one():\n"
        "    return 1\n"
        "for attempt in range(2):\n"
        "    try:\n"
        "        cs.run(one(), state_backend='broken://x')\n"
        "    except cs.PluginError as exc:\n"
        "        print(type(exc.__cause__).__name__, exc.scheme, exc.distribution)\n"
        "        print(exc)\n"
        "print(cs.run(one(), state_backend='goodmem://', cache_backend='sqlite:///ok.db'))\n"
    )
    result, imported = _run(plugin_site, [], tmp_path, code=code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ModuleNotFoundError broken cascade-plugin-broken"
    assert "broken://" in lines[1] and "failed to import" in lines[1]
    assert lines[2:4] == lines[0:2]  # the same clear error again, from the cached failure
    assert lines[4] == "1"
    assert imported.count("cascade_plugin_broken") == 1

    listing, _ = _run(plugin_site, ["backends"], tmp_path)
    assert listing.returncode == 0  # the CLI keeps working


def test_a_provider_returning_the_wrong_thing_is_reported(plugin_site, tmp_path):
    code = (
        "import cascade_core as cs\n"
        "@cs.task\n"
        "def one():\n"
        "    return 1\n"
        "for uri in ('wrongthing://', 'nohooks://'):\n"
        "    try:\n"
        "        cs.run(one(), state_backend=uri)\n"
        "    except cs.PluginError as exc:\n"
        "        print(exc)\n"
        "try:\n"
        "    cs.run(one(), cache_backend='wrongthing://')\n"
        "except cs.PluginError as exc:\n"
        "    print(exc)\n"
    )
    result, _ = _run(plugin_site, [], tmp_path, code=code)
    assert result.returncode == 0, result.stderr
    wrong, empty, no_cache = result.stdout.splitlines()
    assert "cascade-plugin-good" in wrong and "not a state backend" in wrong and "int" in wrong
    assert "implements no hook" in empty
    assert "provides no cache backend" in no_cache


def test_two_distributions_claiming_a_scheme(plugin_site, tmp_path):
    code = (
        "import warnings, cascade_core as cs\n"
        "from cascade_core._plugins.registry import registry\n"
        "from cascade_core import BackendURI\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    cache = registry.cache_backend(BackendURI.parse('dup://'))\n"
        "print(cache.owner)\n"
        "print(caught[0].message if caught else 'no warning')\n"
        "class Mine:\n"
        "    @cs.hookimpl\n"
        "    def cascade_cache_backend(self, uri):\n"
        "        return cs.MemoryCacheBackend()\n"
        "cs.register_backend('dup', Mine())\n"
        "print(type(registry.cache_backend(BackendURI.parse('dup://'))).__name__)\n"
    )
    result, _ = _run(plugin_site, [], tmp_path, code=code)
    assert result.returncode == 0, result.stderr
    owner, warning, runtime = result.stdout.splitlines()
    assert owner == "dup-a"  # deterministic: the distribution name that sorts first
    assert "cascade-plugin-dup-a" in warning and "cascade-plugin-dup-b" in warning
    assert "CASCADE_BACKEND_PREFER" in warning
    assert runtime == "MemoryCacheBackend"  # register_backend wins

    chosen, _ = _run(
        plugin_site, [], tmp_path, code=code, extra_env={"CASCADE_BACKEND_PREFER": "dup=cascade-plugin-dup-b"}
    )
    assert chosen.stdout.splitlines()[0] == "dup-b"


def test_unknown_schemes_list_what_is_installed(plugin_site, tmp_path):
    result, _ = _run(plugin_site, ["backends", "check", "nosuch://x"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown backend scheme 'nosuch'")
    assert "goodmem" in result.stderr and "Traceback" not in result.stderr
    debug, _ = _run(plugin_site, ["--debug", "backends", "check", "nosuch://x"], tmp_path)
    assert "Traceback" in debug.stderr


@pytest.fixture(scope="session")
def core_only_site(tmp_path_factory, build_wheel) -> Path:
    """cascade-core (not editable) and pluggy alone, for a Python started without site-packages."""
    site = tmp_path_factory.mktemp("core-only")
    wheel = build_wheel("cascade_core", tmp_path_factory.mktemp("wheels"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    import pluggy

    shutil.copytree(Path(pluggy.__file__).parent, site / "pluggy")
    for info in Path(pluggy.__file__).parent.parent.glob("pluggy-*.dist-info"):
        shutil.copytree(info, site / info.name)
    return site


def test_the_core_wheel_depends_on_pluggy_only(core_only_site):
    metadata = next(core_only_site.glob("cascade_core-*.dist-info")).joinpath("METADATA").read_text()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and all("pluggy" in line or "importlib-metadata" in line for line in requires)


def test_redis_without_cascade_redis_installed_says_what_to_install(core_only_site, tmp_path):
    code = (
        "import cascade_core as cs\n"
        "@cs.task\n"
        "def one():\n"
        "    return 1\n"
        "for uri in ('redis://localhost:6379/0', 'rediss://h/0'):\n"
        "    try:\n"
        "        cs.run(one(), state_backend=uri)\n"
        "    except cs.BackendNotFoundError as exc:\n"
        "        print(exc)\n"
        "print(cs.run(one(), state_backend='sqlite:///x.db'))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(core_only_site)}
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    redis_line, rediss_line, value = result.stdout.splitlines()
    assert "pip install cascade-redis" in redis_line and "installed schemes: memory, sqlite" in redis_line
    assert "pip install cascade-redis" in rediss_line
    assert value == "1"


def test_listing_imports_nothing_heavier_than_importlib_metadata_and_pluggy(plugin_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cascade_core", "backends"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    for heavy in (
        "asyncio",
        "concurrent.futures",
        "sqlite3",
        "redis",
        "cascade_redis",
        "cascade_plugin_good",
        "cascade_plugin_broken",
        "cascade_core._run.engine",
    ):
        assert heavy not in modules, heavy
