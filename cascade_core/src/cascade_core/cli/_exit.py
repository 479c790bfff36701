"""Exit codes of the ``cascade`` command (docs/cli.md)."""

EXIT_OK = 0  # done
EXIT_FAILED = 1  # a task failed, or a store or plugin failed
EXIT_USAGE = 2  # bad input: the command, a URI, a param, a target
EXIT_INTERRUPTED = 130  # Ctrl-C
