"""Cascade: tasks as plain functions, lazy graphs, resumable runs and a shared cache.

>>> import cascade_core as cs
>>> @cs.task
... def add(a, b):
...     return a + b
>>> cs.run(add(add(1, 2), 3))
6

Importing this package loads no pluggy, asyncio, concurrent.futures, sqlite3 or
importlib.metadata: each is imported on first use.
"""

from __future__ import annotations

from typing import Any

from ._build.cache_policy import DEFAULT, INPUT_VALUES, INPUTS, RUN_ID, TASK_SOURCE, CachePolicy
from ._build.dynamic import Router, unmapped
from ._build.task import LazyResult, Param, Task, task
from ._errors import (
    BackendError,
    BackendNotFoundError,
    BackendUnavailable,
    BackendUnavailableError,
    CascadeError,
    ConfigurationError,
    CycleError,
    DefinitionError,
    HashingError,
    IntegrityError,
    InvalidURIError,
    LimitError,
    ParamError,
    PluginError,
    RunInUseError,
    SerializationError,
    TargetError,
    TaskFailed,
    TaskTimeout,
    UsageError,
)
from ._store.protocols import (
    CacheBackend,
    CacheBackendBase,
    CacheCatalog,
    RunCatalog,
    StateBackend,
    StateBackendBase,
    StateBackendFactory,
)
from ._uri import BackendURI
from .backends.memory import MemoryCacheBackend, MemoryStateBackend, MemoryStateStore

__all__ = [
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

# Names served on first access, so that importing the package stays cheap.
_LAZY = {
    "Engine": "._run.engine",
    "RunReport": "._run.engine",
    "run": "._run.engine",
    "arun": "._run.engine",
    "set_limit": "._run.limit_admin",
    "explain": "._run.explain",
    "Explanation": "._run.explain",
    "register_backend": "._plugins.registry",
    "BackendConflictWarning": "._plugins.registry",
    "unregister_backend": "._plugins.registry",
    "hookimpl": "._plugins.events",
    "ThreadsExecutor": ".executors.threads",
    "InlineExecutor": ".executors.inline",
    "graph": ".pictures",
}


def _repr_markdown_(self: LazyResult) -> str | None:
    """Jupyter shows a lazy result as a Mermaid diagram of its graph (see ``cascade_core.graph``)."""
    from .pictures import markdown

    return markdown(self)


# Wired here, above the graph layer, so that _task never imports the drawing code that reads graphs.
LazyResult._repr_markdown_ = _repr_markdown_  # type: ignore[attr-defined]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("cascade-core")
        except PackageNotFoundError:  # running from a source tree
            return "0+unknown"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cascade_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
