"""A working third-party backend: ``goodmem://NAME`` keeps state and cache in this process."""

import os

import cascade_core as cs
from cascade_core.backends.memory import MemoryCacheBackend, MemoryStateStore

if os.environ.get("CASCADE_TEST_IMPORT_LOG"):
    with open(os.environ["CASCADE_TEST_IMPORT_LOG"], "a") as log:
        log.write("cascade_plugin_good\n")

_stores = {}
_caches = {}


class GoodProvider:
    @cs.hookimpl
    def cascade_state_backend(self, uri):
        uri.parse_options({})
        return _stores.setdefault(uri.host or "", MemoryStateStore())

    @cs.hookimpl
    def cascade_cache_backend(self, uri):
        return _caches.setdefault(uri.host or "", MemoryCacheBackend())


class WrongProvider:
    @cs.hookimpl
    def cascade_state_backend(self, uri):
        return lambda run_id: 42  # not a StateBackend


class EmptyProvider:
    pass


provider = GoodProvider()
wrong_provider = WrongProvider()
empty_provider = EmptyProvider()
