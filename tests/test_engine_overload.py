"""Under overload, the keep-alive and head timeouts never cut a request in flight.

Issue 18: wrk at 10,000 connections against a FastAPI app had thousands of
connections closed by the server while their next request waited unread in the
socket. Under overload one pass of the event loop can take seconds (uvloop polls
up to 48 x 1024 ready sockets before it runs its timers again), so the once-a-second
tick runs late, and the timestamps connections took from its cached clock looked
that much older than they were. The sweep now times a connection from the first
tick that saw its stamp, and leaves alone a connection whose socket holds bytes the
loop has not read yet.

Here a client in its own process keeps 2,000 keep-alive connections busy against
a handler shaped like FastAPI's (several suspensions and some CPU work per
request) with a 1 s keep-alive timeout: every request sent must be answered.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import RunningServer

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 2000
SECONDS = 6.0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    for _ in range(4):  # routing, dependencies, middleware: each a suspension
        await asyncio.sleep(0)
        sum(range(300))  # and some work between them
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_overload_never_closes_a_connection_with_a_request_in_flight(
    serve: Callable[..., RunningServer],
) -> None:
    # Both ends of every connection live on this machine: the server's here, the
    # client's in the child, which inherits the raised limit.
    _raise_fd_limit(CONNECTIONS + 1000)
    srv = serve(app, lifespan="off", keep_alive_timeout=1, head_timeout=1)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.apps.overload_client", str(srv.port), str(CONNECTIONS), str(SECONDS)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    result = json.loads(proc.stdout)
    assert result["connections"] == CONNECTIONS and result["connect_errors"] == 0, result
    assert result["responses"] >= CONNECTIONS, result  # every connection was served
    if result["dropped"] and result["max_gap"] > 0.5:
        # A client that did not run for that long sent its next request late: a
        # connection silent for the keep-alive timeout may rightly be closed.
        pytest.skip(f"the client itself was starved for {result['max_gap']} s: {result}")
    assert result["dropped"] == 0, result
    assert result["unanswered"] == 0, result
