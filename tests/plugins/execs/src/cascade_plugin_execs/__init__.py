"""Third-party executors for tests/core/test_executor_registry.py.

``goodexec://`` runs each call in ``submit`` (it also claims ``threads``, to conflict with
cascade-core); ``halfexec://`` returns an object without ``submit``.
"""

import os

import cascade_core as cs

# Outcome and run_call are what the engine hands back and forth (docs/executors.md).
from cascade_core.plugin import run_call

if os.environ.get("CASCADE_TEST_IMPORT_LOG"):
    with open(os.environ["CASCADE_TEST_IMPORT_LOG"], "a") as log:
        log.write("cascade_plugin_execs\n")


class _Done:
    def cancel(self):
        return False


class GoodExecutor:
    max_workers = 1

    def __init__(self, label):
        self.label = label

    def submit(self, call, done):
        done(run_call(call))
        return _Done()

    def close(self):
        pass

    def __repr__(self):
        return f"GoodExecutor({self.label!r})"


class Provider:
    @cs.hookimpl
    def cascade_executor(self, uri):
        options = uri.parse_options({"label": str}, defaults={"label": "plain"})
        return GoodExecutor(options["label"])


class Half:
    max_workers = 2

    def close(self):
        pass


class HalfProvider:
    @cs.hookimpl
    def cascade_executor(self, uri):
        return Half()


provider = Provider()
half_provider = HalfProvider()
