"""The fsspec drivers behind each scheme: the supported versions, and the options each one takes.

An s3fs from before aiobotocore (0.4, which pip picks when the newest boto3 is pinned beside
an unbounded s3fs) cannot take ``endpoint_url``; so the extras have lower bounds, and an older
driver found at open time is a ConfigurationError that names both versions and the fix.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from cascade_core.plugin import BackendError, ConfigurationError

# scheme -> (fsspec protocol, driver distribution, cascade-fsspec extra)
DRIVERS = {
    "s3": ("s3", "s3fs", "s3"),
    "gs": ("gs", "gcsfs", "gcs"),
    "gcs": ("gcs", "gcsfs", "gcs"),
    "az": ("az", "adlfs", "azure"),
    "abfs": ("abfs", "adlfs", "azure"),
}
# The lower bounds of the extras in pyproject.toml (a test keeps the two equal): the first
# releases of the fsspec this package requires (>=2023.1), all on aiobotocore for s3fs.
MINIMUM = {"s3fs": "2023.1.0", "gcsfs": "2023.1.0", "adlfs": "2023.1.0"}
# Driver parameters that a URI cannot give as text (objects and dicts); cascade-fsspec sets some itself.
_NOT_FROM_URI = frozenset(
    {"self", "loop", "asynchronous", "session", "client_kwargs", "config_kwargs", "s3_additional_kwargs"}
)
# Options of every fsspec filesystem (its instance cache and listings cache) beside the driver's own.
_FSSPEC_OPTIONS = frozenset({"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"})


def release(version: str) -> tuple[int, ...]:
    """The release numbers of a version string: ``2024.9.0.post1`` -> (2024, 9, 0)."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(part) for part in match[0].split(".")) if match else ()


def check_version(scheme: str) -> None:
    """A ConfigurationError when the scheme's driver is installed but older than supported."""
    from importlib.metadata import PackageNotFoundError, version

    _, driver, extra = DRIVERS[scheme]
    try:
        installed = version(driver)
    except PackageNotFoundError:
        return  # not installed: importing it says so, with the pip command
    required = MINIMUM[driver]
    if release(installed) < release(required):
        raise ConfigurationError(
            f"{scheme}:// blob stores need {driver}>={required}, but {driver} {installed} is installed: "
            f'pip install -U "cascade-fsspec[{extra}]" (or "{driver}>={required}")'
        )


def filesystem_class(scheme: str) -> Any:
    """The fsspec filesystem class of ``scheme``, its driver checked and imported."""
    import fsspec

    protocol, driver, extra = DRIVERS[scheme]
    check_version(scheme)
    try:
        return fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        raise BackendError(
            f'{scheme}:// blob stores need {driver}, which is not installed: pip install "cascade-fsspec[{extra}]"'
        ) from exc


def known_options(cls: Any) -> frozenset[str]:
    """The storage options a filesystem class takes by name (its and its bases' ``__init__`` parameters)."""
    names = set(_FSSPEC_OPTIONS)
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return frozenset(names - _NOT_FROM_URI)
