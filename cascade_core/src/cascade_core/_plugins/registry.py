"""Providers keyed by URI scheme: backends, executors and blob stores from the ``cascade.backends`` entry points.

Rules (docs/plugins.md has the full contract):

- Discovery reads entry-point metadata only (``_discovery``); a provider module is imported
  the first time its scheme is used, once, under a lock.
- A scheme claimed by several distributions resolves by, in order: a runtime
  ``register_backend()``, the ``CASCADE_BACKEND_PREFER`` setting
  (``scheme=distribution,...``), cascade-core itself, then the distribution whose name
  sorts first. A ``BackendConflictWarning`` names every claimant.
- A provider that fails to import breaks only its scheme: the error names scheme and
  distribution and chains the cause.
- What a provider offers (state backend, cache backend, executor, blob store) is the hooks
  it implements; asking a scheme for something it does not offer names what is missing.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

from .._errors import BackendNotFoundError, NotProvidedError, PluginError
from .._uri import BackendURI, normalize_scheme
from .discovery import (
    CORE_DISTRIBUTION,
    GROUP,
    PREFER_ENV,
    BackendConflictWarning,
    BackendEntry,
    Claims,
    import_target,
    read_entry_points,
    resolve_claims,
)
from .hookspecs import HOOK_BLOBS, HOOK_CACHE, HOOK_EXECUTOR, HOOK_STATE, PROVIDES
from .providers import (
    NOUNS,
    Loaded,
    call_hook,
    check_backend,
    check_blob_store,
    check_executor,
    checked_factory,
    offers,
    plugin_word,
    validate,
)

__all__ = [
    "CORE_DISTRIBUTION",
    "GROUP",
    "KNOWN_PROVIDERS",
    "PREFER_ENV",
    "BackendConflictWarning",
    "BackendEntry",
    "Registry",
    "register_backend",
    "registry",
    "unregister_backend",
]

# Schemes that a known distribution provides, for the hint when it is not installed.
KNOWN_PROVIDERS: dict[str, str] = {
    "redis": "cascade-redis",
    "rediss": "cascade-redis",
    "redis+unix": "cascade-redis",
    **dict.fromkeys(("redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"), "cascade-redis"),
    "dask": "cascade-dask",
    "dask+tls": "cascade-dask",
    "dask+local": "cascade-dask",
    "s3": "cascade-fsspec",
    "gs": "cascade-fsspec",
    "gcs": "cascade-fsspec",
    "az": "cascade-fsspec",
    "abfs": "cascade-fsspec",
}
# What those distributions offer, so that the hint is not given for the wrong argument.
KNOWN_OFFERS: dict[str, tuple[str, ...]] = {
    "cascade-redis": ("state", "cache"),
    "cascade-dask": ("executor",),
    "cascade-fsspec": ("blobs",),
}


class Registry:
    """The process's view of installed providers. Use the module-level ``registry``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._claims: dict[str, Claims] | None = None
        self._runtime: dict[str, Any] = {}
        self._loaded: dict[str, Loaded] = {}
        self._warned: set[str] = set()

    # -- discovery (metadata only) -------------------------------------------

    def _discover(self) -> dict[str, Claims]:
        with self._lock:
            if self._claims is None:
                self._claims = resolve_claims(read_entry_points())
            return self._claims

    def claims(self, scheme: str) -> Claims | None:
        return self._discover().get(scheme)

    def schemes(self, kind: str | None = None) -> list[str]:
        """Every scheme that can be resolved (installed or registered at runtime).

        With ``kind`` ("state", "cache" or "executor"): only those that offer it, or whose
        entry point does not say what it offers.
        """
        if kind is None:
            return sorted(set(self._discover()) | set(self._runtime))
        return [entry.scheme for entry, _ in self.entries() if not entry.provides_hint or kind in entry.provides_hint]

    def entries(self) -> list[tuple[BackendEntry, list[BackendEntry]]]:
        """Each scheme's chosen entry and the entries it shadows, sorted by scheme."""
        found = []
        claims = self._discover()
        for scheme in self.schemes():
            if scheme in self._runtime:
                runtime = self._runtime_entry(scheme)
                shadowed = [claims[scheme].chosen, *claims[scheme].others] if scheme in claims else []
                found.append((runtime, shadowed))
            else:
                found.append((claims[scheme].chosen, claims[scheme].others))
        return found

    def _runtime_entry(self, scheme: str) -> BackendEntry:
        provider = self._runtime[scheme]
        target = getattr(provider, "__name__", None) or type(provider).__qualname__
        module = getattr(provider, "__module__", None) or type(provider).__module__
        hint = tuple(kind for hook, kind in PROVIDES.items() if callable(getattr(provider, hook, None)))
        return BackendEntry(scheme, "(runtime)", "", f"{module}:{target}", hint, runtime=True)

    # -- runtime registration --------------------------------------------------

    def register(self, scheme: str, provider: Any, *, replace: bool = False) -> None:
        scheme = normalize_scheme(scheme)
        with self._lock:
            current = self._runtime.get(scheme)
            if current is not None and current is not provider and not replace:
                raise PluginError(
                    f"scheme {scheme!r} is already registered at runtime to {current!r}: "
                    "pass replace=True to replace it",
                    scheme=scheme,
                )
            self._runtime[scheme] = provider
            self._loaded.pop(scheme, None)

    def unregister(self, scheme: str) -> None:
        scheme = normalize_scheme(scheme)
        with self._lock:
            self._runtime.pop(scheme, None)
            self._loaded.pop(scheme, None)

    # -- loading ----------------------------------------------------------------

    def load(self, scheme: str, kind: str | None = None) -> Loaded:
        """Import and validate the provider of ``scheme`` (once); raise its error if it failed.

        ``kind``: what the caller wants from it, for the message when no provider is installed.
        """
        scheme = normalize_scheme(scheme)
        loaded = self._loaded.get(scheme)
        if loaded is None:
            with self._lock:
                loaded = self._loaded.get(scheme)
                if loaded is None:
                    if scheme not in self._runtime and scheme not in self._discover():
                        raise self._not_found(scheme, kind)
                    loaded = self._loaded[scheme] = self._load(scheme)
        if loaded.error is not None:
            raise loaded.error
        return loaded

    def _load(self, scheme: str) -> Loaded:
        if scheme in self._runtime:
            entry = self._runtime_entry(scheme)
            return validate(Loaded(entry), self._runtime[scheme])
        claims = self._discover()[scheme]
        if claims.others and scheme not in self._warned:
            self._warned.add(scheme)
            names = ", ".join(e.distribution for e in [claims.chosen, *claims.others])
            warnings.warn(
                f"URI scheme {scheme!r} is claimed by several distributions ({names}); using "
                f"{claims.chosen.distribution}. Set {PREFER_ENV}={scheme}=<distribution> to choose",
                BackendConflictWarning,
                stacklevel=5,
            )
        entry = claims.chosen
        loaded = Loaded(entry)
        try:
            provider = import_target(entry.target)
        except Exception as exc:
            loaded.error = PluginError(
                f"{plugin_word(entry)} for {scheme}:// from {entry.distribution} {entry.version} failed to import "
                f"({entry.target}): {type(exc).__name__}: {exc}",
                scheme=scheme,
                distribution=entry.distribution,
            )
            loaded.error.__cause__ = exc
            return loaded
        return validate(loaded, provider)

    def _not_found(self, scheme: str, kind: str | None) -> BackendNotFoundError:
        hint = KNOWN_PROVIDERS.get(scheme)
        noun = NOUNS[kind] if kind else "backend"
        installed = ", ".join(self.schemes(kind)) or "none"
        listing = f"installed executors: {installed}" if kind == "executor" else f"installed schemes: {installed}"
        if hint and kind and kind not in KNOWN_OFFERS.get(hint, (kind,)):
            message = (
                f"no {noun} for {scheme}://: {hint} (not installed) offers {offers(KNOWN_OFFERS[hint])} only; "
                f"choose another URI for the {noun} ({listing})"
            )
        elif hint:
            message = f"no {noun} for {scheme}:// is installed: pip install {hint}  ({listing})"
        else:
            word = "executor" if kind == "executor" else "backend"
            message = f"unknown {word} scheme {scheme!r}; {listing} (run 'cascade backends' to see them)"
        return BackendNotFoundError(message, scheme=scheme)

    # -- resolving URIs ---------------------------------------------------------

    def state_factory(self, uri: BackendURI) -> Callable[[str], Any]:
        loaded = self._offering(uri, "state")
        result = call_hook(loaded, HOOK_STATE, uri)
        if not callable(result):
            raise PluginError(
                f"backend plugin for {uri.scheme}:// ({loaded.entry.distribution}) returned "
                f"{type(result).__name__} from {HOOK_STATE}; it must return a callable run_id -> StateBackend",
                scheme=uri.scheme,
                distribution=loaded.entry.distribution,
            )
        return checked_factory(result, loaded, uri)

    def cache_backend(self, uri: BackendURI) -> Any:
        loaded = self._offering(uri, "cache")
        backend = call_hook(loaded, HOOK_CACHE, uri)
        check_backend(backend, "cache", uri.scheme, loaded.entry.distribution)
        return backend

    def executor(self, uri: BackendURI) -> Any:
        """A new executor for ``uri``, checked against the executor contract; the caller closes it."""
        loaded = self._offering(uri, "executor")
        executor = call_hook(loaded, HOOK_EXECUTOR, uri)
        try:
            check_executor(executor, uri.scheme, loaded.entry.distribution)
        except PluginError:
            close = getattr(executor, "close", None)
            if callable(close):
                close()
            raise
        return executor

    def blob_store(self, uri: BackendURI) -> Any:
        """A blob store for ``uri``, checked against the blob-store contract."""
        loaded = self._offering(uri, "blobs")
        store = call_hook(loaded, HOOK_BLOBS, uri)
        check_blob_store(store, uri.scheme, loaded.entry.distribution)
        return store

    def _offering(self, uri: BackendURI, kind: str) -> Loaded:
        loaded = self.load(uri.scheme, kind)
        if kind not in loaded.provides:
            noun = NOUNS[kind]
            installed = ", ".join(s for s in self.schemes(kind) if s != uri.scheme) or "none"
            raise NotProvidedError(
                f"{uri.scheme}:// ({loaded.entry.distribution}) provides no {noun}, only "
                f"{offers(loaded.provides)}: choose another URI for the {noun} (installed: {installed})",
                scheme=uri.scheme,
                distribution=loaded.entry.distribution,
            )
        return loaded


registry = Registry()


def register_backend(scheme: str, provider: Any, *, replace: bool = False) -> None:
    """Register a provider for ``scheme`` in this process; it wins over installed plugins."""
    registry.register(scheme, provider, replace=replace)


def unregister_backend(scheme: str) -> None:
    """Undo ``register_backend``."""
    registry.unregister(scheme)
