"""The built-in executors: ``threads://`` (the default) and ``inline://`` (docs/executors.md)."""
