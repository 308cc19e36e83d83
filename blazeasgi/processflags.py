"""What the process flags mean: how many workers, whether a master is needed, this
worker's request limit, and SO_REUSEPORT or one shared socket. The flags themselves
(name, default, help, environment variable) are defined in blazeasgi/options.py.
"""

from __future__ import annotations

import argparse
import os
import random
import sys

from .errors import BlazeasgiError
from .sockets import systemd_fds


class UsageError(BlazeasgiError):
    """A bad flag or environment value: reported as one line, exit code 1."""


def worker_count(args: argparse.Namespace) -> int:
    """--workers, else 1. $WEB_CONCURRENCY (uvicorn's and gunicorn's) reaches it as
    the flag's default through envconfig, like every BLAZEASGI_* variable."""
    count = 1 if args.workers is None else int(args.workers)
    if count < 1:
        raise UsageError(f"--workers must be at least 1, got {count}")
    return count


def wants_master(args: argparse.Namespace) -> bool:
    """Whether this command line needs a master (else: today's single process)."""
    if args.limit_max_requests < 0 or args.limit_max_requests_jitter < 0:
        raise UsageError("--limit-max-requests and its jitter cannot be negative")
    return worker_count(args) > 1 or args.reload or args.limit_max_requests > 0


def max_requests(args: argparse.Namespace) -> int:
    """This worker's request limit: the flag plus its own random jitter (0 = none)."""
    if args.limit_max_requests <= 0:
        return 0
    return int(args.limit_max_requests) + random.randint(0, max(args.limit_max_requests_jitter, 0))


def use_reuse_port(args: argparse.Namespace) -> bool:
    """One SO_REUSEPORT socket per worker (the default on Linux for --host/--port)
    or one shared socket (--no-reuse-port; always for --uds, --fd and systemd).

    Measured with benchmarks/worker_balance.py (2 CPUs, wrk): with a shared
    socket the workers that are awake first take most connections, at 4 workers
    and 16 keep-alive connections one worker got none; with SO_REUSEPORT every
    worker got a share (new connection per request: max/min 1.04 vs 1.54).
    Only Linux spreads connections over SO_REUSEPORT sockets (BSDs pick one).
    """
    tcp = args.uds is None and args.fd is None and not systemd_fds(os.environ)
    if args.reuse_port and not tcp:
        raise UsageError("--reuse-port needs a TCP --host/--port, not --uds, --fd or systemd sockets")
    if args.reuse_port is None:
        return tcp and sys.platform.startswith("linux")
    return bool(args.reuse_port)
