"""Backend providers keyed by URI scheme, discovered from the ``cascade.backends`` entry points.

Rules (docs/plugins.md has the full contract):

- Discovery reads entry-point metadata only; a provider module is imported the first
  time its scheme is used, once, under a lock.
- A scheme claimed by several distributions resolves by, in order: a runtime
  ``register_backend()``, the ``CASCADE_BACKEND_PREFER`` setting
  (``scheme=distribution,...``), cascade-core itself, then the distribution whose name
  sorts first. A ``BackendConflictWarning`` names every claimant.
- A provider that fails to import breaks only its scheme: the error names scheme and
  distribution and chains the cause.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import BackendNotFoundError, InvalidURIError, PluginError
from ._hookspecs import HOOK_CACHE, HOOK_STATE, PROVIDES, backend_specs
from ._protocols import CACHE_METHODS, STATE_METHODS, missing_methods
from ._uri import BackendURI, normalize_scheme

GROUP = "cascade.backends"
CORE_DISTRIBUTION = "cascade-core"
PREFER_ENV = "CASCADE_BACKEND_PREFER"

# Schemes that a known distribution provides, for the hint when it is not installed.
KNOWN_PROVIDERS: dict[str, str] = {
    "redis": "cascade-redis",
    "rediss": "cascade-redis",
    "redis+unix": "cascade-redis",
}

_EXTRAS_RE = re.compile(r"\[(?P<extras>[^\]]*)\]\s*$")


class BackendConflictWarning(UserWarning):
    """Two installed distributions claim the same URI scheme."""


@dataclass(frozen=True)
class BackendEntry:
    """One installed claim on a scheme, as read from metadata (nothing imported)."""

    scheme: str
    distribution: str
    version: str
    target: str
    provides_hint: tuple[str, ...] = ()
    runtime: bool = False


@dataclass
class _Loaded:
    entry: BackendEntry
    provider: Any = None
    manager: Any = None
    provides: tuple[str, ...] = ()
    error: PluginError | None = None


@dataclass
class _Claims:
    chosen: BackendEntry
    others: list[BackendEntry] = field(default_factory=list)


def _normalize_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Registry:
    """The process's view of installed backend providers. Use the module-level ``registry``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._claims: dict[str, _Claims] | None = None
        self._runtime: dict[str, Any] = {}
        self._loaded: dict[str, _Loaded] = {}
        self._warned: set[str] = set()

    # -- discovery (metadata only) -------------------------------------------

    def _discover(self) -> dict[str, _Claims]:
        with self._lock:
            if self._claims is None:
                self._claims = _resolve_claims(_read_entry_points())
            return self._claims

    def claims(self, scheme: str) -> _Claims | None:
        return self._discover().get(scheme)

    def schemes(self) -> list[str]:
        """Every scheme that can be resolved: installed or registered at runtime."""
        return sorted(set(self._discover()) | set(self._runtime))

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
        return BackendEntry(scheme, "(runtime)", "", f"{module}:{target}", runtime=True)

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

    def load(self, scheme: str) -> _Loaded:
        """Import and validate the provider of ``scheme`` (once); raise its error if it failed."""
        scheme = normalize_scheme(scheme)
        loaded = self._loaded.get(scheme)
        if loaded is None:
            with self._lock:
                loaded = self._loaded.get(scheme)
                if loaded is None:
                    loaded = self._loaded[scheme] = self._load(scheme)
        if loaded.error is not None:
            raise loaded.error
        return loaded

    def _load(self, scheme: str) -> _Loaded:
        if scheme in self._runtime:
            entry = self._runtime_entry(scheme)
            return _validate(_Loaded(entry), self._runtime[scheme])
        claims = self._discover().get(scheme)
        if claims is None:
            raise self._not_found(scheme)
        if claims.others and scheme not in self._warned:
            self._warned.add(scheme)
            names = ", ".join(e.distribution for e in [claims.chosen, *claims.others])
            warnings.warn(
                f"URI scheme {scheme!r} is claimed by several distributions ({names}); using "
                f"{claims.chosen.distribution}. Set {PREFER_ENV}={scheme}=<distribution> to choose",
                BackendConflictWarning,
                stacklevel=4,
            )
        entry = claims.chosen
        loaded = _Loaded(entry)
        try:
            provider = _import_target(entry.target)
        except Exception as exc:
            loaded.error = PluginError(
                f"backend plugin for {scheme}:// from {entry.distribution} {entry.version} failed to import "
                f"({entry.target}): {type(exc).__name__}: {exc}",
                scheme=scheme,
                distribution=entry.distribution,
            )
            loaded.error.__cause__ = exc
            return loaded
        return _validate(loaded, provider)

    def _not_found(self, scheme: str) -> BackendNotFoundError:
        hint = KNOWN_PROVIDERS.get(scheme)
        installed = ", ".join(self.schemes()) or "none"
        if hint:
            return BackendNotFoundError(
                f"no backend for {scheme}:// is installed: pip install {hint}  (installed schemes: {installed})",
                scheme=scheme,
            )
        return BackendNotFoundError(
            f"unknown backend scheme {scheme!r}; installed schemes: {installed} (run 'cascade backends' to see them)",
            scheme=scheme,
        )

    # -- resolving URIs ---------------------------------------------------------

    def state_factory(self, uri: BackendURI) -> Callable[[str], Any]:
        loaded = self.load(uri.scheme)
        if "state" not in loaded.provides:
            raise _wrong_kind(loaded, uri, "state")
        result = _call_hook(loaded, HOOK_STATE, uri)
        if not callable(result):
            raise PluginError(
                f"backend plugin for {uri.scheme}:// ({loaded.entry.distribution}) returned "
                f"{type(result).__name__} from {HOOK_STATE}; it must return a callable run_id -> StateBackend",
                scheme=uri.scheme,
                distribution=loaded.entry.distribution,
            )
        return _checked_factory(result, loaded, uri)

    def cache_backend(self, uri: BackendURI) -> Any:
        loaded = self.load(uri.scheme)
        if "cache" not in loaded.provides:
            raise _wrong_kind(loaded, uri, "cache")
        backend = _call_hook(loaded, HOOK_CACHE, uri)
        check_backend(backend, "cache", uri.scheme, loaded.entry.distribution)
        return backend


def _wrong_kind(loaded: _Loaded, uri: BackendURI, kind: str) -> PluginError:
    offers = " and ".join(loaded.provides) or "nothing"
    return PluginError(
        f"{uri.scheme}:// ({loaded.entry.distribution}) provides no {kind} backend, only {offers}: "
        f"choose another URI for the {kind} backend",
        scheme=uri.scheme,
        distribution=loaded.entry.distribution,
    )


def _call_hook(loaded: _Loaded, hook: str, uri: BackendURI) -> Any:
    from ._errors import CascadeError

    try:
        result = getattr(loaded.manager.hook, hook)(uri=uri)
    except CascadeError:
        raise
    except Exception as exc:
        raise PluginError(
            f"backend plugin for {uri.scheme}:// ({loaded.entry.distribution}) failed on {uri}: "
            f"{type(exc).__name__}: {exc}",
            scheme=uri.scheme,
            distribution=loaded.entry.distribution,
        ) from exc
    if result is None:
        raise PluginError(
            f"backend plugin for {uri.scheme}:// ({loaded.entry.distribution}) returned nothing for {uri}",
            scheme=uri.scheme,
            distribution=loaded.entry.distribution,
        )
    return result


def _checked_factory(factory: Callable[[str], Any], loaded: _Loaded, uri: BackendURI) -> Callable[[str], Any]:
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
    if missing:
        raise PluginError(
            f"backend plugin for {scheme}:// ({distribution or 'unknown'}) returned {type(backend).__name__}, "
            f"which is not a {kind} backend: missing {', '.join(missing)}",
            scheme=scheme,
            distribution=distribution,
        )


def _validate(loaded: _Loaded, provider: Any) -> _Loaded:
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
            f"backend plugin for {scheme}:// from {distribution} is invalid: {exc}",
            scheme=scheme,
            distribution=distribution,
        )
        loaded.error.__cause__ = exc
        return loaded
    provides = tuple(PROVIDES[name] for name in (HOOK_STATE, HOOK_CACHE) if getattr(manager.hook, name).get_hookimpls())
    if not provides:
        loaded.error = PluginError(
            f"backend plugin for {scheme}:// from {distribution} implements no hook: "
            f"define {HOOK_STATE} and/or {HOOK_CACHE} with @cascade_core.hookimpl",
            scheme=scheme,
            distribution=distribution,
        )
        return loaded
    loaded.provider, loaded.manager, loaded.provides = provider, manager, provides
    return loaded


def _import_target(target: str) -> Any:
    import importlib

    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _read_entry_points() -> list[BackendEntry]:
    from importlib.metadata import distributions

    found: dict[tuple[str, str], BackendEntry] = {}
    for dist in distributions():
        entry_points = [ep for ep in dist.entry_points if ep.group == GROUP]
        if not entry_points:
            continue
        dist_name = _normalize_dist(dist.metadata["Name"] or "unknown")
        for ep in entry_points:
            try:
                scheme = normalize_scheme(ep.name)
            except InvalidURIError:
                warnings.warn(
                    f"{dist_name} declares an invalid cascade.backends scheme {ep.name!r}; ignored",
                    BackendConflictWarning,
                    stacklevel=2,
                )
                continue
            value = ep.value
            hint: tuple[str, ...] = ()
            extras = _EXTRAS_RE.search(value)
            if extras:
                value = value[: extras.start()].strip()
                words = {x.strip() for x in extras["extras"].split(",")}
                hint = tuple(kind for kind in ("state", "cache") if kind in words)
            # The same distribution seen twice on sys.path counts once.
            found.setdefault((scheme, dist_name), BackendEntry(scheme, dist_name, dist.version or "", value, hint))
    return list(found.values())


def _preferences() -> dict[str, str]:
    prefer: dict[str, str] = {}
    for item in os.environ.get(PREFER_ENV, "").split(","):
        scheme, eq, dist = item.partition("=")
        if eq and scheme.strip() and dist.strip():
            prefer[scheme.strip().lower()] = _normalize_dist(dist.strip())
    return prefer


def _resolve_claims(entries: list[BackendEntry]) -> dict[str, _Claims]:
    by_scheme: dict[str, list[BackendEntry]] = {}
    for entry in entries:
        by_scheme.setdefault(entry.scheme, []).append(entry)
    prefer = _preferences()
    claims = {}
    for scheme, candidates in by_scheme.items():
        wanted = prefer.get(scheme)

        def rank(entry: BackendEntry, wanted: str | None = wanted) -> tuple[int, int, str]:
            return (entry.distribution != wanted, entry.distribution != CORE_DISTRIBUTION, entry.distribution)

        ordered = sorted(candidates, key=rank)
        claims[scheme] = _Claims(ordered[0], ordered[1:])
    return claims


registry = Registry()


def register_backend(scheme: str, provider: Any, *, replace: bool = False) -> None:
    """Register a provider for ``scheme`` in this process; it wins over installed plugins."""
    registry.register(scheme, provider, replace=replace)


def unregister_backend(scheme: str) -> None:
    """Undo ``register_backend``."""
    registry.unregister(scheme)


def parse_uri(uri: str | BackendURI) -> BackendURI:
    return uri if isinstance(uri, BackendURI) else BackendURI.parse(uri)
