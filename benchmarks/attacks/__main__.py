"""Run every attack measurement against blazeasgi and uvicorn, one after the other.

    python -m benchmarks.attacks          # about 3 minutes on 2 cores

Arguments given here go to every script (``--servers blazeasgi`` is common to all);
each script's own options: ``python -m benchmarks.attacks.slowloris -h``. Defaults:
500 slowloris connections for 20 s, 50 slow readers, 10,000 idle keep-alive
connections, SIGTERM with 200 requests in flight.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPTS = ("slowloris", "slow_reader", "idle_connections", "shutdown")

if __name__ == "__main__":
    for name in SCRIPTS:
        subprocess.run([sys.executable, "-m", f"benchmarks.attacks.{name}", *sys.argv[1:]], check=True)
