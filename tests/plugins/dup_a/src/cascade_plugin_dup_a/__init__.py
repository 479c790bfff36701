"""One of two distributions claiming the `dup` scheme; its cache says which one it is."""

import os

import cascade_core as cs
from cascade_core.backends.memory import MemoryCacheBackend

if os.environ.get("CASCADE_TEST_IMPORT_LOG"):
    with open(os.environ["CASCADE_TEST_IMPORT_LOG"], "a") as log:
        log.write("cascade_plugin_dup_a\n")


class Cache(MemoryCacheBackend):
    owner = "dup-a"


class Provider:
    @cs.hookimpl
    def cascade_cache_backend(self, uri):
        return Cache()


provider = Provider()
