"""Built-in backends: ``memory://`` (in-process) and ``sqlite:///file.db`` (embedded, persistent)."""
