"""The run lease on a real redis-server: the scenarios of tests/core/test_run_lease.py
(in tests/drivers.py), with separate driver processes."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.redis


def test_a_second_driver_of_a_live_run_is_refused_naming_the_holder(tmp_path, redis_uri, drivers, monkeypatch):
    drivers.second_driver_is_refused(tmp_path, redis_uri, monkeypatch)


def test_a_second_cli_driver_is_refused_with_one_line(tmp_path, redis_uri, drivers):
    drivers.second_cli_driver_is_refused(tmp_path, redis_uri)


@pytest.mark.slow
def test_sharing_drivers_split_the_work_and_count_what_others_did(tmp_path, redis_uri, drivers, redis_server):
    drivers.sharing_drivers_split_the_work(tmp_path, redis_uri)
    with redis_server.client() as client:
        assert client.keys("cascade:lease:*") == [] and client.keys("cascade:lock:*") == []  # all released


def test_a_killed_driver_of_this_machine_is_taken_over_at_once(tmp_path, redis_uri, drivers, monkeypatch):
    drivers.killed_driver_is_taken_over_at_once(tmp_path, redis_uri, monkeypatch)


@pytest.mark.slow
def test_exclusive_and_sharing_drivers_refuse_each_other(tmp_path, redis_uri, drivers, monkeypatch):
    drivers.exclusive_and_sharing_drivers_refuse_each_other(tmp_path, redis_uri, monkeypatch)


@pytest.mark.parametrize("leases", [False, True], ids=["default", "leases"])
def test_ctrl_c_then_the_printed_resume_command_starts_at_once(tmp_path, redis_uri, drivers, redis_server, leases):
    drivers.interrupted_cli_resumes_at_once(tmp_path, redis_uri, redis_uri, leases=leases)
    with redis_server.client() as client:
        assert client.keys("cascade:lease:*") == [] and client.keys("cascade:lock:*") == []
