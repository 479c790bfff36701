"""The public surface cannot drift, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import cascade_core as cs

# The public API, declared once in cascade_core/__init__.py; a change here is a change of the API.
PUBLIC = [
    "BackendConflictWarning",
    "BackendError",
    "BackendNotFoundError",
    "BackendURI",
    "BackendUnavailable",
    "BackendUnavailableError",
    "CacheBackend",
    "CacheBackendBase",
    "CacheCatalog",
    "CachePolicy",
    "CascadeError",
    "ConfigurationError",
    "CycleError",
    "DEFAULT",
    "DefinitionError",
    "Engine",
    "Explanation",
    "HashingError",
    "INPUTS",
    "INPUT_VALUES",
    "InlineExecutor",
    "IntegrityError",
    "InvalidURIError",
    "LazyResult",
    "LimitError",
    "MemoryCacheBackend",
    "MemoryStateBackend",
    "MemoryStateStore",
    "Param",
    "ParamError",
    "PluginError",
    "RUN_ID",
    "Router",
    "RunCatalog",
    "RunInUseError",
    "RunReport",
    "SerializationError",
    "StateBackend",
    "StateBackendBase",
    "StateBackendFactory",
    "TASK_SOURCE",
    "TargetError",
    "Task",
    "TaskFailed",
    "TaskTimeout",
    "ThreadsExecutor",
    "UsageError",
    "__version__",
    "arun",
    "explain",
    "graph",
    "hookimpl",
    "register_backend",
    "run",
    "set_limit",
    "task",
    "unmapped",
    "unregister_backend",
]


def test_the_public_api_is_exactly_the_declared_one():
    assert cs.__all__ == PUBLIC


def test_all_names_resolve_and_are_sorted():
    assert cs.__all__ == sorted(cs.__all__)
    for name in cs.__all__:
        assert getattr(cs, name) is not None, name


def test_errors_derive_from_cascade_error():
    for name in cs.__all__:
        value = getattr(cs, name)
        if isinstance(value, type) and issubclass(value, Exception) and not issubclass(value, Warning):
            assert issubclass(value, cs.CascadeError), name


def test_import_loads_no_heavy_module():
    heavy = ["pluggy", "importlib.metadata", "asyncio", "concurrent.futures", "sqlite3", "redis"]
    code = f"import sys, cascade_core; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_comes_from_metadata():
    from importlib.metadata import version

    assert cs.__version__ == version("cascade-core")


def test_run_in_use_error_is_public_and_picklable():
    import pickle

    error = cs.RunInUseError("held", run_id="r", holder="host h pid 1", since="2026-01-01T00:00:00Z", shared=False)
    assert "RunInUseError" in cs.__all__ and issubclass(cs.RunInUseError, cs.CascadeError)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.holder, copy.since, copy.shared) == ("held", error.holder, error.since, False)
