"""Built-in blob stores: ``file://`` (a folder) and ``memory://`` (one per process and name)."""
