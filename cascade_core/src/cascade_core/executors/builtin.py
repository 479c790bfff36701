"""The providers of the built-in executor schemes, registered through the same
``cascade.backends`` entry points as any third-party plugin (see cascade_core/pyproject.toml)."""

from __future__ import annotations

from typing import Any

from .._plugins.events import hookimpl  # type: ignore[attr-defined]  # imports pluggy: fine, a provider loads on use


class ThreadsProvider:
    """``threads://?max_workers=N``: worker threads plus an event loop for async tasks (the default)."""

    @hookimpl
    def cascade_executor(self, uri: Any) -> Any:
        from .._uri import positive_int
        from .threads import ThreadsExecutor

        options = uri.parse_options({"max_workers": positive_int})
        return ThreadsExecutor(options.get("max_workers"))


class InlineProvider:
    """``inline://``: everything in the calling thread; async tasks on a private event loop."""

    @hookimpl
    def cascade_executor(self, uri: Any) -> Any:
        from .inline import InlineExecutor

        uri.parse_options({})  # no options: an unknown one is an error
        return InlineExecutor()


threads = ThreadsProvider()
inline = InlineProvider()
