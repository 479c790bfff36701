"""Plugins and settings: resolving URIs to providers, hookspecs, the executor contract.

Private: import from ``cascade_core`` or ``cascade_core.plugin`` (docs/architecture.md)."""
