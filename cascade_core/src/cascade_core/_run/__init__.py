"""One run: graph -> plan -> scheduler -> executor -> backends, and its records.

Private: import from ``cascade_core`` or ``cascade_core.plugin`` (docs/architecture.md)."""
