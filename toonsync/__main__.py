"""``python -m toonsync``: the ``toonsync`` command line."""

import sys

from .cli import main

sys.exit(main())
