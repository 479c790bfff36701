"""A result over a backend's size limit fails its task with an error naming the option of the
backend that refused; memory:// and sqlite:// declare no limit."""

from __future__ import annotations

from pathlib import Path

import pytest

import cascade_core as cs


class _CappedState(cs.MemoryStateBackend):
    max_payload_bytes = 100  # a third-party backend that names no option


class _NamedCapState(_CappedState):
    max_payload_option = "row_limit"


@cs.task
def _big() -> bytes:
    return b"x" * 1000


@pytest.mark.parametrize(
    ("backend", "advice"),
    [(_CappedState, "use a backend that allows more"), (_NamedCapState, "raise the backend's row_limit")],
)
def test_the_size_limit_error_names_the_option_of_the_backend_that_refused(backend, advice):
    store = cs.MemoryStateStore()
    with pytest.raises(cs.TaskFailed) as info:
        cs.run(_big(), state_backend=lambda run_id: backend(run_id, store))
    message = str(info.value.cause)
    assert isinstance(info.value.cause, cs.SerializationError)
    assert "over the state backend's limit of 100 bytes: return a smaller value or " + advice in message
    assert "max_value_size" not in message


def test_memory_and_sqlite_declare_no_size_limit(tmp_path: Path):
    """They store any size, so there is no option to name (redis: tests/redis/test_redis_hang.py)."""
    from cascade_core._plugins.registry import registry

    for uri in ("memory://", f"sqlite:///{tmp_path / 'store.db'}"):
        parsed = cs.BackendURI.parse(uri)
        state = registry.state_factory(parsed)("limits")
        cache = registry.cache_backend(parsed)
        for backend in (state, cache):
            assert getattr(backend, "max_payload_bytes", None) is None
        assert cs.run(_big(), state_backend=uri, cache_backend=uri) == b"x" * 1000
