"""``python -m benchmarks.techempower [--quick] [--tests ...] [--servers ...] [--verify-only]``."""

import sys

from .run import main

sys.exit(main())
