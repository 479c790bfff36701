"""After a crash on this machine the next driver resumes at once (docs/backends.md, "After a
crash"): sqlite, with threads and on Dask, alone and sharing the run; the scenarios are in
tests/crashes.py, shared with the Redis and Redis Cluster tests."""

from __future__ import annotations

import pytest


def test_a_sigkilled_driver_is_taken_over_at_once(tmp_path, crashes):
    crashes.sigkilled_driver_resumes_at_once(tmp_path, f"sqlite:///{tmp_path / 'r.db'}")


def test_a_sigkilled_sharing_driver_frees_its_node_leases_at_once(tmp_path, crashes):
    crashes.sigkilled_driver_resumes_at_once(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", "--leases")


@pytest.mark.slow
def test_a_sigkilled_driver_on_dask_is_taken_over_at_once(tmp_path, crashes):
    executor = "dask+local://?n_workers=1&threads_per_worker=2&processes=false"
    crashes.sigkilled_driver_resumes_at_once(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", "--executor", executor)


@pytest.mark.parametrize("scheme", ["sqlite", "memory"])
def test_gone_live_reused_and_foreign_holders_are_told_apart(tmp_path, crashes, caplog, scheme):
    uri = f"sqlite:///{tmp_path / 'r.db'}" if scheme == "sqlite" else "memory://crashes"
    crashes.holders_are_told_apart(uri, caplog)
