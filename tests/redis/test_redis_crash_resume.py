"""After a crash on this machine the next driver resumes at once, on a real redis-server
(the scenarios of tests/core/test_crash_resume.py, in tests/crashes.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("flags", [(), ("--leases",)], ids=["default", "leases"])
def test_a_sigkilled_driver_is_taken_over_at_once_on_redis(tmp_path, crashes, redis_uri, redis_server, flags):
    crashes.sigkilled_driver_resumes_at_once(tmp_path, redis_uri, *flags)
    with redis_server.client() as client:
        assert client.keys("cascade:lease:*") == []  # the dead driver's leases went with the resume


def test_gone_live_reused_and_foreign_holders_are_told_apart_on_redis(crashes, redis_uri, caplog):
    crashes.holders_are_told_apart(redis_uri, caplog)
