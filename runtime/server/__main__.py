"""``python -m toonsync.runtime.server [serve options]``."""

from .cli import main

raise SystemExit(main())
