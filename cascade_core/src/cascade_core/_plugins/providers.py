"""A loaded provider and the checks on it: which hooks it implements, and what they return.

A provider offers a state backend, a cache backend and/or an executor: one per hook it
implements (``_hookspecs``). Whatever a hook returns is checked against its contract before
the engine sees it, so that a broken plugin fails with a ``PluginError`` naming the scheme,
the distribution and what is missing, not somewhere inside a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._errors import PluginError
from .._store.protocols import CACHE_METHODS, STATE_METHODS, missing_methods
from .._uri import BackendURI
from .discovery import BackendEntry
from .hookspecs import HOOK_EXECUTOR, PROVIDES, backend_specs

NOUNS = {"state": "state backend", "cache": "cache backend", "executor": "executor", "blobs": "blob store"}


@dataclass
class Loaded:
    """A provider imported and validated once per process; ``error`` when that failed."""

    entry: BackendEntry
    provider: Any = None
    manager: Any = None
    provides: tuple[str, ...] = ()
    error: PluginError | None = None


def offers(provides: tuple[str, ...]) -> str:
    """``("state", "cache")`` -> "state and cache backends"; ``("executor",)`` -> "an executor"."""
    backends = [kind for kind in provides if kind not in ("executor", "blobs")]
    parts = []
    if backends:
        parts.append(" and ".join(backends) + (" backends" if len(backends) > 1 else " backend"))
    if "executor" in provides:
        parts.append("an executor")
    if "blobs" in provides:
        parts.append("a blob store")
    return " and ".join(parts) or "nothing"


def plugin_word(entry: BackendEntry) -> str:
    """How messages name the plugin of ``entry``: "executor plugin" when it says it offers only that."""
    return "executor plugin" if entry.provides_hint == ("executor",) else "backend plugin"


def call_hook(loaded: Loaded, hook: str, uri: BackendURI) -> Any:
    from .._errors import CascadeError

    what = "executor plugin" if hook == HOOK_EXECUTOR else "backend plugin"
    try:
        result = getattr(loaded.manager.hook, hook)(uri=uri)
    except CascadeError:
        raise
    except Exception as exc:
        raise PluginError(
            f"{what} for {uri.scheme}:// ({loaded.entry.distribution}) failed on {uri}: {type(exc).__name__}: {exc}",
            scheme=uri.scheme,
            distribution=loaded.entry.distribution,
        ) from exc
    if result is None:
        raise PluginError(
            f"{what} for {uri.scheme}:// ({loaded.entry.distribution}) returned nothing for {uri}",
            scheme=uri.scheme,
            distribution=loaded.entry.distribution,
        )
    return result


def checked_factory(factory: Callable[[str], Any], loaded: Loaded, uri: BackendURI) -> Callable[[str], Any]:
    """Wrap a plugin's factory so that what it returns is checked against the protocol."""

    class CheckedFactory:
        def __init__(self) -> None:
            self.wrapped = factory
            self.uri = uri

        def __call__(self, run_id: str) -> Any:
            backend = factory(run_id)
            check_backend(backend, "state", uri.scheme, loaded.entry.distribution)
            return backend

        def __getattr__(self, name: str) -> Any:  # list_runs, delete_run, serializer, ...
            return getattr(factory, name)

        def close(self) -> None:
            close = getattr(factory, "close", None)
            if callable(close):
                close()

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc_info: object) -> None:
            self.close()

        def __repr__(self) -> str:
            return f"<state backends for {uri}>"

    return CheckedFactory()


def check_backend(backend: Any, kind: str, scheme: str, distribution: str | None) -> None:
    """Raise PluginError when ``backend`` lacks methods of the state or cache protocol."""
    missing = missing_methods(backend, STATE_METHODS if kind == "state" else CACHE_METHODS)
    if kind == "state" and not missing and not isinstance(getattr(backend, "run_id", None), str):
        missing = ["run_id"]
    _refuse_if(missing, backend, f"a {kind} backend", "", "backend", scheme, distribution)


def check_blob_store(store: Any, scheme: str, distribution: str | None) -> None:
    """Raise PluginError when ``store`` lacks methods of the blob-store contract."""
    from .._store.blob_protocol import missing_blob_methods

    missing = missing_blob_methods(store)
    _refuse_if(missing, store, "a blob store", " (see docs/blobs.md)", "backend", scheme, distribution)


def check_executor(executor: Any, scheme: str, distribution: str | None) -> None:
    """Raise PluginError when ``executor`` lacks what the executor contract needs."""
    from .executor import missing_executor_methods

    missing = missing_executor_methods(executor)
    _refuse_if(missing, executor, "an executor", " (see docs/executors.md)", "executor", scheme, distribution)


def _refuse_if(
    missing: list[str], obj: Any, what: str, see: str, plugin: str, scheme: str, distribution: str | None
) -> None:
    """The one PluginError of a hook that returned something lacking ``missing``."""
    if missing:
        raise PluginError(
            f"{plugin} plugin for {scheme}:// ({distribution or 'unknown'}) returned {type(obj).__name__}, "
            f"which is not {what}: missing {', '.join(missing)}{see}",
            scheme=scheme,
            distribution=distribution,
        )


def validate(loaded: Loaded, provider: Any) -> Loaded:
    import pluggy

    if isinstance(provider, type):
        provider = provider()
    manager = pluggy.PluginManager("cascade")
    manager.add_hookspecs(backend_specs())
    scheme, distribution = loaded.entry.scheme, loaded.entry.distribution
    try:
        manager.register(provider, name=f"{distribution}:{scheme}")
        manager.check_pending()
    except Exception as exc:  # pluggy.PluginValidationError, or a provider that refuses registration
        loaded.error = PluginError(
            f"{plugin_word(loaded.entry)} for {scheme}:// from {distribution} is invalid: {exc}",
            scheme=scheme,
            distribution=distribution,
        )
        loaded.error.__cause__ = exc
        return loaded
    provides = tuple(kind for hook, kind in PROVIDES.items() if getattr(manager.hook, hook).get_hookimpls())
    if not provides:
        loaded.error = PluginError(
            f"{plugin_word(loaded.entry)} for {scheme}:// from {distribution} implements no hook: "
            f"define {', '.join(PROVIDES)} (any of them) with @cascade_core.hookimpl",
            scheme=scheme,
            distribution=distribution,
        )
        return loaded
    loaded.provider, loaded.manager, loaded.provides = provider, manager, provides
    return loaded
