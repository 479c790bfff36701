"""After a crash on this machine the next driver resumes at once, on a real Redis Cluster
(the scenarios of tests/core/test_crash_resume.py, in tests/crashes.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("flags", [(), ("--leases",)], ids=["default", "leases"])
def test_a_sigkilled_driver_is_taken_over_at_once_on_a_cluster(tmp_path, crashes, cluster_uri, flags):
    crashes.sigkilled_driver_resumes_at_once(tmp_path, cluster_uri, *flags)


def test_gone_live_reused_and_foreign_holders_are_told_apart_on_a_cluster(crashes, cluster_uri, caplog):
    crashes.holders_are_told_apart(cluster_uri, caplog)
