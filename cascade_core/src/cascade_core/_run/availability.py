"""Which of a run's backends still answer. Once a backend raised BackendUnavailableError, the
run calls it no more: each call to a store that stopped answering would wait out its whole
retry budget again, and a run must fail within the documented bound (docs/redis.md)."""

from __future__ import annotations

from typing import Any

from .._errors import BackendUnavailableError
from .._store.protocols import CacheBackend, StateBackend


class Availability:
    """The backends of one run that raised BackendUnavailableError.

    A state and a cache at one URI are one store: when either goes down, both are down.
    """

    def __init__(self, state: StateBackend, cache: CacheBackend, same_store: bool) -> None:
        self.state = state
        self.cache = cache
        self.same_store = same_store
        self._down: list[tuple[Any, BackendUnavailableError]] = []

    def available(self, backend: Any) -> bool:
        return all(down is not backend for down, _ in self._down)

    def failure_of(self, backend: Any) -> BackendUnavailableError | None:
        """The error that found ``backend`` unavailable in this run, or None while it answers."""
        return next((exc for down, exc in self._down if down is backend), None)

    def note(self, exc: BaseException, backend: Any = None) -> None:
        """Mark the backend that raised ``exc`` unavailable: ``backend`` when given, else the state
        or the cache, whichever's method the traceback passes through (both when neither's is)."""
        if not isinstance(exc, BackendUnavailableError):
            return
        suspects = [self.state, self.cache]
        if not self.same_store:
            if backend is not None:
                suspects = [backend]
            tb = exc.__traceback__
            while tb is not None and len(suspects) > 1:
                # Zero cost until a store fails, unlike wrapping each backend call on the hot path.
                owner = tb.tb_frame.f_locals.get("self")
                if any(owner is suspect for suspect in suspects):
                    suspects = [owner]
                tb = tb.tb_next
        if backend is not None and all(backend is not suspect for suspect in suspects):
            suspects.append(backend)
        self._down.extend((suspect, exc) for suspect in suspects if self.available(suspect))

    def guard(self, backend: Any) -> Any:
        """``backend`` as a lease keeper calls it: failing at once once it is down."""
        return _Guarded(backend, self)


class _Guarded:
    """A backend whose calls fail at once once the run found it unavailable."""

    def __init__(self, backend: Any, availability: Availability) -> None:
        self._backend = backend
        self._availability = availability

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if not callable(attr):
            return attr
        backend, availability = self._backend, self._availability

        def call(*args: Any, **kwargs: Any) -> Any:
            failure = availability.failure_of(backend)
            if failure is not None:
                raise BackendUnavailableError(str(failure))
            try:
                return attr(*args, **kwargs)
            except BackendUnavailableError as exc:
                availability.note(exc, backend)
                raise

        return call
