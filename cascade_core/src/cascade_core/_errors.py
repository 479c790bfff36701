"""Every error Cascade raises on purpose.

The tree::

    CascadeError                      root: catch this to catch everything below
    ├── DefinitionError               a task, param or graph is malformed
    │   ├── CycleError                `.after()` made the graph cyclic
    │   └── TargetError               run() was given something that is not a lazy result
    ├── ParamError                    a param is unknown, missing or of the wrong type
    ├── HashingError                  an input cannot be hashed for a node id or cache key
    ├── TaskFailed                    a task raised; chains the original exception
    ├── TaskTimeout                   an attempt of a task ran past its timeout=
    ├── LimitError                    a named limit is unknown, or its backend keeps none
    ├── ConfigurationError            a setting such as CASCADE_SECRET_KEY is unusable
    ├── RunInUseError                 another live driver holds the run id (names it)
    ├── BackendError                  anything about a state or cache backend
    │   ├── InvalidURIError           a backend URI or one of its options is malformed
    │   ├── BackendNotFoundError      no installed plugin provides the URI's scheme
    │   ├── PluginError               a plugin failed to load or returned the wrong thing
    │   │   └── NotProvidedError      the URI's plugin provides no such thing (an executor URI as a state)
    │   ├── BackendUnavailableError   the store cannot be reached (names the masked URI)
    │   ├── SerializationError        a value cannot be stored (unpicklable, too large)
    │   └── IntegrityError            a stored payload is corrupt, unsigned or tampered
    │       └── BlobError             the blob behind a reference is missing or corrupt
    └── UsageError                    the CLI was called wrongly

Messages are one line that says what happened and what to do; context is kept
as attributes so that callers need not parse messages.
"""

from __future__ import annotations

from ._masking import describe


class CascadeError(Exception):
    """Root of every error that Cascade raises on purpose."""


class DefinitionError(CascadeError):
    """A task, param or graph is defined in a way Cascade cannot run."""


class CycleError(DefinitionError):
    """The graph contains a cycle (only `.after()` can make one)."""


class TargetError(DefinitionError):
    """`run()` was given a target that holds no lazy result."""


class ParamError(CascadeError):
    """A param is unknown, missing, or does not fit its declared type."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class HashingError(CascadeError):
    """An input value cannot be hashed into a node id or cache key."""

    def __init__(self, message: str, *, task: str, argument: str) -> None:
        super().__init__(message)
        self.task = task
        self.argument = argument


class TaskFailed(CascadeError):
    """A task raised. The original exception is chained as ``__cause__``."""

    def __init__(self, task: str, node_id: str, run_id: str, cause: BaseException) -> None:
        self.task = task
        self.node_id = node_id
        self.run_id = run_id
        self.cause = cause
        super().__init__(
            f"task {task!r} failed in run {run_id!r}: {describe(cause)} "
            f"(fix it and rerun with run_id={run_id!r} to resume)"
        )

    def __reduce__(self):  # keep picklable across processes
        return (type(self), (self.task, self.node_id, self.run_id, self.cause))


class TaskTimeout(CascadeError):
    """An attempt of a task ran past its ``timeout=``; ``task`` names it, ``timeout`` is in seconds."""

    def __init__(self, task: str, timeout: float, attempt: int = 0) -> None:
        self.task = task
        self.timeout = timeout
        self.attempt = attempt
        super().__init__(
            f"task {task!r} timed out after {timeout:g} s (attempt {attempt + 1}): "
            "make it faster, or raise its timeout= (or retries=)"
        )

    def __reduce__(self):  # keep picklable across processes (a Dask worker sends it back)
        return (type(self), (self.task, self.timeout, self.attempt))


class LimitError(CascadeError):
    """A named limit is not configured, or the state backend keeps no limits; ``limit`` names it."""

    def __init__(self, message: str, *, limit: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class RunInUseError(CascadeError):
    """Another live driver holds the run id; ``holder`` names it (``host h pid 1``), ``since`` when it started."""

    def __init__(self, message: str, *, run_id: str, holder: str, since: str, shared: bool) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.holder = holder
        self.since = since
        self.shared = shared  # whether the holders share the run (started with leases=True)

    def __reduce__(self):  # keep picklable across processes
        return (_run_in_use, (str(self), self.run_id, self.holder, self.since, self.shared))


def _run_in_use(message: str, run_id: str, holder: str, since: str, shared: bool) -> RunInUseError:
    return RunInUseError(message, run_id=run_id, holder=holder, since=since, shared=shared)


class ConfigurationError(CascadeError):
    """A setting from the environment, such as ``CASCADE_SECRET_KEY``, cannot be used as it is."""


class BackendError(CascadeError):
    """Something about a state or cache backend went wrong."""


class InvalidURIError(BackendError):
    """A backend URI, or one of its query options, is malformed."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class BackendNotFoundError(BackendError):
    """No installed plugin provides the URI's scheme."""

    def __init__(self, message: str, *, scheme: str) -> None:
        super().__init__(message)
        self.scheme = scheme


class PluginError(BackendError):
    """A backend plugin failed to import, failed validation, or returned the wrong thing."""

    def __init__(self, message: str, *, scheme: str, distribution: str | None = None) -> None:
        super().__init__(message)
        self.scheme = scheme
        self.distribution = distribution


class NotProvidedError(PluginError):
    """The URI's plugin provides no backend or executor of the kind asked for (``--executor sqlite:///x.db``)."""


class BackendUnavailableError(BackendError):
    """The store behind a backend cannot be reached. The message names the masked URI."""


class SerializationError(BackendError):
    """A value cannot be stored: it does not serialize, or it is over the size limit."""


class IntegrityError(BackendError):
    """A stored payload is corrupt, truncated, unsigned or signed with an unknown key."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class BlobError(IntegrityError):
    """A blob behind a reference is missing, corrupt, or there is no blob store to read it from."""

    def __init__(self, message: str, *, key: str, blob_id: str) -> None:
        super().__init__(message, key=key)
        self.blob_id = blob_id

    def __reduce__(self):  # keep picklable across processes
        return (_blob_error, (str(self), self.key, self.blob_id))


def _blob_error(message: str, key: str, blob_id: str) -> BlobError:
    return BlobError(message, key=key, blob_id=blob_id)


class UsageError(CascadeError):
    """The command line was used wrongly."""


# Short aliases that read naturally in user code (`except cs.BackendUnavailable`).
BackendUnavailable = BackendUnavailableError
