"""Blob stores for Cascade on IPFS: ``ipfs://HOST:PORT`` and ``ipfs+https://HOST:PORT`` (a node's RPC API)."""

__version__ = "0.1.0"
