"""Building a graph: tasks and lazy results, node ids, input encoding, cache policies.

Private: import from ``cascade_core`` or ``cascade_core.plugin`` (docs/architecture.md)."""
