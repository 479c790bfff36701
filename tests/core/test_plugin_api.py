"""cascade_core.plugin, the public module for plugin authors: its surface cannot drift, it stays
cheap to import, and nothing this repository ships as a plugin reaches past it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cascade_core as cs
import cascade_core.plugin as plugin

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = [
    "BackendError",
    "BackendURI",
    "BackendUnavailableError",
    "BlobInfo",
    "BlobLocators",
    "BlobMarkers",
    "BlobStore",
    "CacheBackend",
    "CacheBackendBase",
    "CacheCatalog",
    "CascadeError",
    "ConfigurationError",
    "EntryCount",
    "Executor",
    "InvalidURIError",
    "LeaseHolders",
    "LeaseTableMixin",
    "Leases",
    "LimitRow",
    "LimitRules",
    "LimitStore",
    "LimitStoreMixin",
    "MASK",
    "MAX_SECONDS",
    "MAX_TIMEOUT",
    "Outcome",
    "RunCatalog",
    "SerializationError",
    "StateBackend",
    "StateBackendBase",
    "StateBackendFactory",
    "TaskCall",
    "TaskRecords",
    "TemporaryFiles",
    "at_most",
    "blob_path",
    "boolean",
    "checked_ttl",
    "choice",
    "hookimpl",
    "is_blob_id",
    "is_locator",
    "is_sensitive",
    "mask_credentials",
    "mask_text",
    "mask_uri_text",
    "non_negative_int",
    "parse_uri",
    "positive_float",
    "positive_int",
    "run_call",
    "run_call_async",
    "size_bytes",
    "supports_leases",
    "timeout_seconds",
]


def test_all_is_pinned_sorted_and_resolves():
    assert plugin.__all__ == EXPECTED == sorted(EXPECTED)
    for name in plugin.__all__:
        assert getattr(plugin, name) is not None, name
    # isidentifier: pytest's assertion rewriting may add "@py_builtins" to a module it rewrote.
    public = {name for name in vars(plugin) if name.isidentifier() and not name.startswith("_")}
    public -= {"annotations", "TYPE_CHECKING", "Any"}
    assert public <= set(plugin.__all__) | {"hookimpl"}, public - set(plugin.__all__)


def test_names_shared_with_the_package_are_the_same_objects():
    for name in plugin.__all__:
        if hasattr(cs, name):
            assert getattr(plugin, name) is getattr(cs, name), name


def test_errors_derive_from_cascade_error():
    errors = [getattr(plugin, name) for name in plugin.__all__ if name.endswith("Error")]
    assert len(errors) == 6
    assert all(issubclass(error, cs.CascadeError) for error in errors)


def test_import_loads_nothing_heavy_until_hookimpl_is_used():
    heavy = ["pluggy", "importlib.metadata", "asyncio", "concurrent.futures", "sqlite3", "redis"]
    code = (
        "import sys\n"
        "import cascade_core.plugin as p\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
        "marker = p.hookimpl\n"
        "print(type(marker).__name__, marker.project_name, 'pluggy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "HookimplMarker cascade True"]


def test_parse_uri():
    uri = plugin.parse_uri("Yours://u:s%2Fcret@host:7000//abs/dir?timeout=2.5&token=t0k")
    assert (uri.scheme, uri.username, uri.password, uri.host, uri.port) == ("yours", "u", "s/cret", "host", 7000)
    assert (uri.path, uri.database, uri.options) == ("//abs/dir", "/abs/dir", {"timeout": "2.5", "token": "t0k"})
    assert plugin.parse_uri(uri) is uri
    assert str(uri) == "yours://u:***@host:7000//abs/dir?timeout=2.5&token=***"
    assert uri.parse_options({"timeout": plugin.positive_float, "token": str}) == {"timeout": 2.5, "token": "t0k"}
    assert plugin.mask_text("failed: s/cret and t0k", uri) == "failed: *** and ***"
    with pytest.raises(plugin.InvalidURIError, match="^malformed backend URI 'no-scheme'"):
        plugin.parse_uri("no-scheme")


def test_a_provider_marked_with_the_public_hookimpl_serves_runs(tmp_path, counter):
    class Provider:
        @plugin.hookimpl
        def cascade_cache_backend(self, uri):
            return cs.MemoryCacheBackend()

        @plugin.hookimpl
        def cascade_state_backend(self, uri):
            return cs.MemoryStateStore()

    cs.register_backend("apitest", Provider())

    @cs.task
    def double(x):
        counter.hit("double")
        return 2 * x

    assert cs.run(double(21), state_backend="apitest://", cache_backend="apitest://") == 42
    assert counter["double"] == 1


# -- no plugin in this repository imports a private module -------------------------------

PLUGIN_SOURCES = [ROOT / "cascade_redis" / "src", ROOT / "cascade_dask" / "src", ROOT / "tests" / "plugins"]
# Executors have no public module for what the engine hands them yet (TaskCall, run_call):
# the one known exception, listed so that any other private import still fails.
NOT_YET_PUBLIC: dict[str, list[str]] = {}


def private_imports(path: Path) -> list[str]:
    """``module`` or ``module.name`` for each import of a ``cascade_core._...`` module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _private(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _private(node.module):
                found.append(node.module)
            elif node.module == "cascade_core":
                found += [f"cascade_core.{alias.name}" for alias in node.names if alias.name.startswith("_")]
    return found


def _private(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "cascade_core" and any(part.startswith("_") for part in parts[1:])


def test_the_private_import_check_sees_every_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import cascade_core._uri\nfrom cascade_core._store.leases import X\nfrom cascade_core import _errors, plugin\n"
        "from cascade_core.plugin import BackendURI\nimport cascade_core.backends.memory\nfrom . import _local\n"
    )
    assert private_imports(sample) == ["cascade_core._uri", "cascade_core._store.leases", "cascade_core._errors"]


def test_no_plugin_here_imports_a_private_cascade_core_module():
    files = [path for root in PLUGIN_SOURCES for path in sorted(root.rglob("*.py")) if "build" not in path.parts]
    assert len(files) >= 8
    offenders = {str(path.relative_to(ROOT)): private_imports(path) for path in files}
    assert {path: names for path, names in offenders.items() if names} == {
        path: names for path, names in NOT_YET_PUBLIC.items() if path in offenders
    }


def test_the_documented_example_imports_only_public_names():
    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks
    imported = []
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cascade_core"):
                assert not _private(node.module), node.module
                imported += [(node.module, alias.name) for alias in node.names]
    assert imported and all(module == "cascade_core.plugin" for module, _ in imported), imported
    for _, name in imported:
        assert name in plugin.__all__, name
    # Every name the module offers is listed in the docs.
    for name in plugin.__all__:
        assert f"`{name}" in text, name
