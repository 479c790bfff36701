"""An executor plugin module that fails to import."""

import os

if os.environ.get("CASCADE_TEST_IMPORT_LOG"):
    with open(os.environ["CASCADE_TEST_IMPORT_LOG"], "a") as log:
        log.write("cascade_plugin_execs.broken\n")

import a_scheduler_that_is_not_installed  # noqa: E402,F401
