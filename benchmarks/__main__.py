"""``python -m benchmarks [--quick] [--scenarios ...] [--servers ...] [--connections ...]``."""

import sys

from .runner import main

sys.exit(main())
