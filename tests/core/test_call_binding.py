"""Task calls are bound to the signature by Cascade itself for plain signatures (inspect is slow):
every call binds exactly as ``inspect.Signature.bind`` + ``apply_defaults`` would, or is refused
with the same one-line DefinitionError."""

from __future__ import annotations

import inspect

import pytest

import cascade_core as cs


def plain(a, b=2, c=3):
    return a


def positional_only(a, /, b, c=1):
    return a


def no_defaults(a, b):
    return a


def keyword_only(a, b=2, *, c, d=4):
    return a


def with_locals(a, /, b=1):
    total = a + b  # a local: the code object's names go past the parameters
    return total


class Holder:
    def method(self, a, b=2):
        return a


CALLS = [
    ((), {}),
    ((1,), {}),
    ((1,), {"c": 5}),
    ((), {"a": 1}),
    ((), {"c": 5, "a": 1, "b": 0}),
    ((1, 2), {}),
    ((1, 2, 3), {}),
    ((1, 2, 3, 4), {}),
    ((1,), {"a": 1}),
    ((), {"b": 1}),
    ((1,), {"d": 1}),
    ((1,), {"b": 7}),
    ((1, 2), {"b": 7}),
]


def _expected(fn, args, kwargs):
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return "refused"
    bound.apply_defaults()
    return bound.args, bound.kwargs


@pytest.mark.parametrize(
    "fn", [plain, positional_only, no_defaults, keyword_only, with_locals, Holder().method], ids=lambda fn: fn.__name__
)
@pytest.mark.parametrize(
    ("args", "kwargs"), [*CALLS, ((1,), {"c": 3}), ((1, 2), {"d": 0, "c": 1}), ((1,), {"d": 0})], ids=repr
)
def test_every_call_binds_as_inspect_would(fn, args, kwargs):
    task = cs.task(name=f"binding.{fn.__name__}")(fn)
    expected = _expected(fn, args, kwargs)
    if expected == "refused":
        with pytest.raises(cs.DefinitionError, match="called with the wrong arguments"):
            task(*args, **kwargs)
        return
    lazy = task(*args, **kwargs)
    assert (lazy.args, lazy.kwargs) == expected


def test_a_keyword_call_is_the_same_node_as_a_positional_one():
    from cascade_core._build.graph import build_graph

    task = cs.task(name="binding.same")(plain)
    graph = build_graph([task(1, 2, 3), task(1, c=3, b=2), task(a=1, b=2)])
    assert len({node.hash for node in graph.nodes}) == 1
