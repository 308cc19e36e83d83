"""``python -m compat``: the differential run (see compat/runner.py)."""

import sys

from .runner import main

sys.exit(main())
