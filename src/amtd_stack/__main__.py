"""``python -m amtd_stack up --state-dir DIR``: the same as ``amtd up``."""

from amtd_stack.running.cli import main

raise SystemExit(main())
