"""Exit codes of the ``cascade`` command, and which errors mean which (docs/cli.md)."""

from __future__ import annotations

from .._errors import (
    BackendNotFoundError,
    CascadeError,
    ConfigurationError,
    DefinitionError,
    HashingError,
    InvalidURIError,
    LimitError,
    NotProvidedError,
    ParamError,
    UsageError,
)

EXIT_OK = 0  # done
EXIT_FAILED = 1  # a task failed, a store, a plugin or a stored payload failed, or an unexpected error
EXIT_USAGE = 2  # bad input: the command, a URI, a param, a target, a setting
EXIT_INTERRUPTED = 130  # Ctrl-C

# The errors that mean "what you gave is wrong": fixing the command, the workflow or the
# environment helps, trying again does not. Every other CascadeError (a store that fails or
# holds a corrupt payload, a plugin that breaks, a run held by another driver) is a failure.
BAD_INPUT: tuple[type[CascadeError], ...] = (
    UsageError,
    DefinitionError,  # and CycleError, TargetError
    ParamError,
    HashingError,
    InvalidURIError,
    BackendNotFoundError,
    NotProvidedError,  # a PluginError, but the URI given is the wrong one
    ConfigurationError,
    LimitError,  # a limit nothing configured, a bad limit setting
)


def exit_code(exc: CascadeError) -> int:
    """2 for bad input (``BAD_INPUT``); 1 for every other Cascade error."""
    return EXIT_USAGE if isinstance(exc, BAD_INPUT) else EXIT_FAILED
