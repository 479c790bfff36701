"""``python -m cascade_core`` is the ``cascade`` command."""

from .cli import main

raise SystemExit(main())
