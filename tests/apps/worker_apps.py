"""Apps the worker tests serve under a master: every answer names the worker's pid."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from .cli_apps import _lifespan


async def pid_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """GET / answers the pid; /slow first says so on stderr, then sleeps 1 s."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        print(f"slow request started in {os.getpid()}", file=sys.stderr, flush=True)
        await asyncio.sleep(1.0)
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
