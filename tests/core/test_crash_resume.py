"""After a crash on this machine the next driver resumes at once (docs/backends.md, "After a
crash"): on sqlite and a real redis-server, alone and sharing the run, and on Dask; the
scenarios are in tests/crashes.py, shared with the Redis Cluster tests."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("flags", [(), ("--leases",)], ids=["default", "sharing"])
def test_a_sigkilled_driver_is_taken_over_at_once_and_its_leases_freed(tmp_path, crashes, any_shared_state, flags):
    crashes.sigkilled_driver_resumes_at_once(tmp_path, any_shared_state.uri, *flags)
    assert any_shared_state.leases_left() == []  # the dead driver's leases went with the resume


@pytest.mark.slow
def test_a_sigkilled_driver_on_dask_is_taken_over_at_once(tmp_path, crashes):
    executor = "dask+local://?n_workers=1&threads_per_worker=2&processes=false"
    crashes.sigkilled_driver_resumes_at_once(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", "--executor", executor)


def test_gone_live_reused_and_foreign_holders_are_told_apart(crashes, caplog, any_state):
    crashes.holders_are_told_apart(any_state.uri, caplog)
