"""A plugin that fails to import."""

import os

if os.environ.get("CASCADE_TEST_IMPORT_LOG"):
    with open(os.environ["CASCADE_TEST_IMPORT_LOG"], "a") as log:
        log.write("cascade_plugin_broken\n")

import a_module_that_does_not_exist  # noqa: E402,F401
