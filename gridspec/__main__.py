"""``python -m gridspec``: the same as the ``gridspec`` command."""

from gridspec.cli import main

raise SystemExit(main())
