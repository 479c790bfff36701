"""A task call matched to its function's signature, defaults filled in, exactly as
``inspect.Signature.bind`` + ``apply_defaults`` would: so that ``f(1)``, ``f(a=1)`` and
``f(1, b=2)`` are the same node, and a changed default changes the node.

``inspect`` costs about 15 µs a call, more than the rest of building a node; a plain function
(positional-only, positional-or-keyword and keyword-only parameters, no ``*args`` or
``**kwargs``, no ``__signature__`` or ``__wrapped__``) is bound here from its code object
instead, and a call with one value per parameter and no keyword needs no binding at all.
Anything else, and every call these rules do not bind, goes to ``inspect``, which also
words the error of a call that does not fit.
"""

from __future__ import annotations

import inspect
import types
from typing import Any

from .._errors import DefinitionError

_GIVEN = object()  # in a plan: the value is the keyword argument of that name


class Binder:
    """How the calls of one task's function are bound (built once per task)."""

    __slots__ = (
        "fn", "label", "arity", "names", "defaults", "posonly", "kwonly", "kwdefaults", "fills", "plans", "signature"
    )

    def __init__(self, fn: Any, label: str) -> None:
        self.fn = fn
        self.label = label
        self.signature: Any = None  # inspect's, computed on the first call that needs it
        self.names: tuple[str, ...] | None = None  # None: every call goes to inspect
        self.arity = -1  # a call with exactly this many positional arguments and no keyword is bound as it is
        self.fills: dict[int, tuple] = {}  # positional count -> the defaults that complete it (no keyword given)
        self.plans: dict[tuple, Any] = {}  # (positional count, *keyword names) -> its _plan
        code = getattr(fn, "__code__", None) if type(fn) is types.FunctionType else None
        if code is None or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
            return
        if getattr(fn, "__wrapped__", None) is not None or getattr(fn, "__signature__", None) is not None:
            return
        count = code.co_argcount  # positional-only ones included
        names = self.names = tuple(code.co_varnames[:count])
        self.kwonly = tuple(code.co_varnames[count : count + code.co_kwonlyargcount])
        values = fn.__defaults__ or ()
        self.defaults = dict(zip(names[count - len(values) :], values))
        self.kwdefaults = dict(fn.__kwdefaults__ or {})
        self.posonly = code.co_posonlyargcount
        if not self.kwonly:  # with keyword-only parameters, every call gets keyword arguments
            self.arity = count
            defaults = self.defaults
            for given in range(count - len(values), count):
                self.fills[given] = tuple(defaults[name] for name in names[given:])

    def bind(self, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """``(args, kwargs)`` as inspect binds them, defaults applied; DefinitionError if the call does not fit."""
        if self.names is not None:
            if not kwargs:
                fill = self.fills.get(len(args))
                if fill is not None:
                    return args + fill, kwargs
            shape = (len(args), *kwargs)  # a task's calls mostly share one shape: its plan is made once
            plan = self.plans.get(shape)
            if plan is None:
                plan = self.plans[shape] = self._plan(len(args), kwargs)
            if plan:
                rest, named = plan
                return (
                    args + tuple([kwargs[name] if value is _GIVEN else value for name, value in rest]),
                    {name: kwargs[name] if value is _GIVEN else value for name, value in named},
                )
        return self._inspect(args, kwargs)

    def _plan(self, given: int, kwargs: dict[str, Any]) -> tuple[tuple, tuple] | None:
        """Where each parameter after the ``given`` positional ones comes from (``_GIVEN``: the
        keyword argument of its name, else its default), or None when inspect must bind the call."""
        names, kwonly, defaults, kwdefaults = self.names, self.kwonly, self.defaults, self.kwdefaults
        assert names is not None
        if not (self.posonly if kwargs else 0) <= given <= len(names):
            return None
        rest = names[given:]
        if sum(name in kwargs for name in rest) + sum(name in kwargs for name in kwonly) != len(kwargs):
            return None  # a keyword that names no parameter left, or a positional-only one
        if not all(name in kwargs or name in defaults for name in rest) or not all(
            name in kwargs or name in kwdefaults for name in kwonly
        ):
            return None  # a parameter without a value
        return (
            tuple((name, _GIVEN if name in kwargs else defaults[name]) for name in rest),
            tuple((name, _GIVEN if name in kwargs else kwdefaults[name]) for name in kwonly),
        )

    def _inspect(self, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        if self.signature is None:
            try:
                self.signature = inspect.signature(self.fn)
            except (TypeError, ValueError):  # some builtins have none: take the call as it is
                self.signature = False
        if self.signature is False:
            return args, kwargs
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise DefinitionError(f"task {self.label!r} called with the wrong arguments: {exc}") from None
        bound.apply_defaults()
        return bound.args, bound.kwargs
