"""uvicorn's lines around a served app's life, for the CLI and ``blazeasgi.run``::

    Started server process [<pid>]
    Waiting for application startup.        (when the app has a lifespan to run)
    Application startup complete.
    Serving on http://127.0.0.1:8000 (press CTRL+C to quit)   (blazeasgi.cli)
    Shutting down
    Waiting for application shutdown.
    Application shutdown complete.
    Finished server process [<pid>]         (blazeasgi.cli)

A startup that fails must leave one line, the CLI's ``Error: ...``: the first two
lines are held back until the startup succeeds, takes longer than NOTICE_DELAY,
or something else is logged meanwhile, and dropped if it fails before then.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

from .asgi.adapter import ASGIAdapter
from .engine.exchange import Exchange
from .engine.server import ServedApp, Server
from .native.app import App

logger = logging.getLogger("blazeasgi.error")
#: Seconds a running startup is quiet before "Waiting for application startup." shows.
NOTICE_DELAY = 1.0


def runs_lifespan(app: ServedApp) -> bool:
    """Whether starting ``app`` runs any of its code: an ASGI lifespan (not
    --lifespan off), or a native App's hooks, lifespan or ASGI fallback."""
    if isinstance(app, App):
        return bool(app.on_startup or app.on_shutdown or app.lifespan is not None or app.fallback is not None)
    if isinstance(app, ASGIAdapter):
        return app.lifespan.mode != "off"
    return True


class Announced:
    """``app`` (a ServedApp) whose startup and shutdown log uvicorn's lines.

    Requests go straight to the app's own ``dispatch``: no extra call per request.
    """

    def __init__(self, app: ServedApp, process: bool = True) -> None:
        self.app = app
        self.dispatch: Callable[[Exchange], Coroutine[Any, Any, Any] | None] = app.dispatch
        #: Whether to name the process ("Started server process"): not in a worker,
        #: whose master logs its start.
        self.process = process
        self.lifespan = runs_lifespan(app)

    async def startup(self) -> None:
        held = HeldLines(asyncio.get_running_loop())
        if self.process:
            held.add(f"Started server process [{os.getpid()}]")
        if self.lifespan:
            held.add("Waiting for application startup.")
        try:
            await self.app.startup()
        except BaseException:
            held.drop()  # the CLI prints why, as one line
            raise
        held.flush()
        if self.lifespan:
            logger.info("Application startup complete.")

    async def shutdown(self) -> None:
        if self.lifespan:
            logger.info("Waiting for application shutdown.")
        await self.app.shutdown()
        if self.lifespan:
            logger.info("Application shutdown complete.")


class HeldLines(logging.Filter):
    """Info lines logged later: by flush(), after NOTICE_DELAY, or just before any
    other line of the ``blazeasgi.error`` logger (so the order stays true)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float = NOTICE_DELAY) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._flushing = False
        self._timer = loop.call_later(delay, self.flush)
        logger.addFilter(self)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._flushing:
            self.flush()
        return True

    def flush(self) -> None:
        lines, self.lines = self.lines, []
        self._flushing = True
        try:
            for line in lines:
                logger.info(line)
        finally:
            self._flushing = False
        self.drop()

    def drop(self) -> None:
        self.lines = []
        self._timer.cancel()
        logger.removeFilter(self)


class AnnouncingServer(Server):
    """A Server that logs "Shutting down" when it is first told to stop (signal,
    --limit-max-requests, or its master gone)."""

    _stopping = False

    def request_stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            logger.info("Shutting down")
        super().request_stop()
