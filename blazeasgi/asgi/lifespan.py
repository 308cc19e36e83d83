"""The ASGI lifespan protocol: startup before serving, shutdown after draining."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..engine.server import StartupFailed
from ..types import ASGIApp, Message

logger = logging.getLogger("blazeasgi.error")

LIFESPAN_MODES = ("auto", "on", "off")


class Lifespan:
    """Runs the app's lifespan in its own task; ``mode`` is uvicorn's --lifespan."""

    def __init__(self, app: ASGIApp, mode: str = "auto") -> None:
        if mode not in LIFESPAN_MODES:
            raise ValueError(f"lifespan must be one of {LIFESPAN_MODES}, not {mode!r}")
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self._events: asyncio.Queue[Message] | None = None
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure: str | None = None
        self._running = False

    async def startup(self) -> None:
        if self.mode == "off":
            return
        self._events = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._events.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self._failure is not None:
            raise StartupFailed(self._failure)

    async def shutdown(self) -> None:
        if not self._running or self._events is None:
            return
        await self._events.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()
        if self._failure is not None:
            logger.error("Application shutdown failed: %s", self._failure)

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self._startup_done.is_set():
                if self.mode == "auto":
                    logger.info("ASGI 'lifespan' protocol appears unsupported.")
                else:
                    logger.error("Exception in 'lifespan' protocol", exc_info=exc)
                    self._failure = f"{type(exc).__name__}: {exc}"
            elif not self._shutdown_done.is_set():
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
                self._failure = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, Exception):
                raise
        finally:
            self._running = False
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> Message:
        assert self._events is not None
        return await self._events.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._running = True
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._failure = message.get("message") or "startup failed"
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._failure = message.get("message") or "shutdown failed"
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message type {kind!r}.")
