"""Storing: the payload codec, blob references and stores, backend contracts, leases.

Private: import from ``cascade_core`` or ``cascade_core.plugin`` (docs/architecture.md)."""
