"""Listening, the once-a-second tick (Date header, timeouts) and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ..config import Config
from .connection import HTTPConnection
from .exchange import Exchange
from .http11 import default_headers

logger = logging.getLogger("blazeasgi.error")

#: What an interface gives the engine per request: None when the response was
#: produced synchronously, else a coroutine the engine runs (see tasks.TaskHost).
Dispatch = Callable[[Exchange], "Coroutine[Any, Any, Any] | None"]


class ServedApp(Protocol):
    """The engine's view of an application (native App, ASGI adapter, or both)."""

    def dispatch(self, exchange: Exchange) -> Coroutine[Any, Any, Any] | None: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...


class LiveWebSocket(Protocol):
    """An accepted WebSocket (blazeasgi.websocket), for the graceful shutdown."""

    def shutdown(self) -> None: ...

    def abort(self) -> None: ...


class StartupFailed(Exception):
    """The application's startup (lifespan) failed; the message says why."""


class ServerState:
    """What every connection of one server shares. Mutated only by the tick."""

    __slots__ = (
        "access_log",
        "clock",
        "config",
        "connections",
        "default_headers",
        "dispatch",
        "draining",
        "loop",
        "websockets",
    )

    def __init__(self, config: Config, dispatch: Dispatch, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.dispatch = dispatch
        self.loop = loop
        self.connections: set[HTTPConnection] = set()
        #: Accepted WebSockets: detached from HTTP, closed with 1001 on shutdown.
        self.websockets: set[LiveWebSocket] = set()
        self.draining = False
        self.access_log = config.access_log
        self.clock = loop.time()
        self.default_headers = b""
        self.refresh()

    def refresh(self) -> None:
        self.clock = self.loop.time()
        self.default_headers = default_headers(self.config.date_header, self.config.server_header)


class Server:
    """Serve ``app`` on already-bound sockets until told to stop."""

    def __init__(self, app: ServedApp, config: Config | None = None) -> None:
        self.app = app
        self.config = config or Config()
        self._servers: list[asyncio.AbstractServer] = []
        self._stop: asyncio.Event | None = None
        self._tick: asyncio.TimerHandle | None = None
        self.state: ServerState | None = None
        self.started = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------
    async def serve(self, sockets: list[socket.socket], install_signal_handlers: bool = True) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.app.startup()
        state = self.state = ServerState(self.config, self.app.dispatch, loop)
        try:
            for sock in sockets:
                server = await loop.create_server(
                    lambda: HTTPConnection(state), sock=sock, backlog=self.config.backlog
                )
                self._servers.append(server)
            if install_signal_handlers:
                self._install_signal_handlers(loop)
            self._schedule_tick()
            self.started.set()
            await self._stop.wait()
        finally:
            await self._drain(state)
            await self.app.shutdown()

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not main thread
                pass

    async def _drain(self, state: ServerState) -> None:
        """Stop accepting, close idle connections, give busy ones time to finish."""
        state.draining = True
        for server in self._servers:
            server.close()
        for conn in list(state.connections):
            if conn.is_idle():
                conn.close()
        for ws in list(state.websockets):
            ws.shutdown()
        deadline = state.loop.time() + self.config.graceful_shutdown_timeout
        while (state.connections or state.websockets) and state.loop.time() < deadline:
            await asyncio.sleep(0.05)
            for conn in list(state.connections):
                if conn.is_idle():
                    conn.close()
        if state.connections or state.websockets:
            logger.warning(
                "Graceful shutdown timed out; closing %d connection(s)",
                len(state.connections) + len(state.websockets),
            )
            for conn in list(state.connections):
                conn.transport.abort()
            for ws in list(state.websockets):
                ws.abort()
        if self._tick is not None:
            self._tick.cancel()
        for server in self._servers:
            await server.wait_closed()

    # -- the tick: Date header and timeouts, once a second ---------------------------------
    def _schedule_tick(self) -> None:
        state = self.state
        assert state is not None
        self._tick = state.loop.call_later(1.0, self._on_tick)

    def _on_tick(self) -> None:
        state = self.state
        assert state is not None
        state.refresh()
        now = state.clock
        config = self.config
        keep_alive, head_timeout = config.keep_alive_timeout, config.head_timeout
        for conn in list(state.connections):
            if conn._head_since and now - conn._head_since >= head_timeout:
                conn.timeout_head()
            elif conn._idle_since and now - conn._idle_since >= keep_alive:
                conn.close()
        self._schedule_tick()


def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket, IPv6 when the host is an IPv6 address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(backlog)
    sock.setblocking(False)
    return sock
