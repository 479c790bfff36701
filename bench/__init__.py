"""Cascade's benchmark suite: ``python -m bench`` (``--quick`` for a < 2 minute pass).

Not part of the test suite (pytest only collects ``tests/``). See docs/benchmarks.md.
"""
