"""Blob stores for Cascade on object storage through fsspec: ``s3://``, ``gs://``, ``gcs://``, ``az://``, ``abfs://``."""

__version__ = "0.1.0"
