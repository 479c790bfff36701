"""The ``cascade.backends`` provider for ``dask://``, ``dask+tls://`` and ``dask+local://``.

cascade-core imports this module the first time one of those schemes is used; ``distributed``
itself is imported only when an executor is made.
"""

from __future__ import annotations

from typing import Any

from cascade_core.plugin import hookimpl  # imports pluggy: fine, a provider loads on use


class DaskProvider:
    """Makes a :class:`~cascade_dask.executor.DaskExecutor` per run from a dask URI."""

    @hookimpl
    def cascade_executor(self, uri: Any) -> Any:
        from .executor import DaskExecutor

        return DaskExecutor.from_uri(uri)

    def __repr__(self) -> str:
        return "DaskProvider()"


provider = DaskProvider()
