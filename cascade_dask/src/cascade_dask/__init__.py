"""Run Cascade tasks on a Dask cluster.

Installed, it serves ``dask://HOST:PORT`` (an existing scheduler), ``dask+tls://HOST:PORT``
and ``dask+local://?n_workers=2&processes=true`` (a ``LocalCluster`` made for the run)::

    import cascade_core as cs

    cs.run(target, state_backend="redis://db:6379/0", executor="dask://scheduler:8786")

Each task call is one Dask task; values stay on the workers. See docs/executors.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DaskExecutor", "DaskValue", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("DaskExecutor", "DaskValue"):  # imports distributed: only on first use
        from . import executor

        return getattr(executor, name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("cascade-dask")
        except PackageNotFoundError:  # running from a source tree
            return "0+unknown"
    raise AttributeError(f"module 'cascade_dask' has no attribute {name!r}")
