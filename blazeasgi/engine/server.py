"""Listening, the once-a-second tick (Date header, timeouts) and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from .._compiled import STATUS as COMPILED_STATUS
from ..config import Config
from ..errors import BlazeasgiError
from ..tls import SHUTDOWN_TIMEOUT as TLS_SHUTDOWN_TIMEOUT
from ..tls import ServerTLS, load_tls
from . import http2
from .accepting import Listener
from .exchange import Exchange
from .serverstate import ConnectionFactory, Dispatch, LiveWebSocket, ServerState
from .taskpaths import HANDLER_PATH

__all__ = ["Dispatch", "LiveWebSocket", "ServedApp", "Server", "ServerState", "StartupFailed"]

logger = logging.getLogger("blazeasgi.error")
#: Seconds a draining server still waits for requests on connections it had
#: accepted (see Server._drain) before closing the idle ones.
_ACCEPT_GRACE = 0.1
#: Seconds from one sweep of the timeouts to the next (at least: a busy loop runs it late).
_TICK = 1.0
#: Slack in comparing two sweep times: uvloop's clock counts milliseconds, and
#: ticks 1 s apart can differ by 0.9999999 once divided into seconds.
_CLOCK_GRAIN = 0.001
#: Listening handles per socket under uvloop (see acceptors).
UVLOOP_ACCEPTORS = 8


class ServedApp(Protocol):
    """The engine's view of an application (native App, ASGI adapter, or both)."""

    def dispatch(self, exchange: Exchange) -> Coroutine[Any, Any, Any] | None: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...


class StartupFailed(BlazeasgiError):
    """The application's startup (lifespan) failed; the message says why."""


def server_tls(config: Config) -> ServerTLS | None:
    """The TLS setup a Server serves ``config`` with (None: plain HTTP); ALPN offers
    h2 when the engine serves HTTP/2. Raises TLSConfigError (blazeasgi.tls), or
    BlazeasgiError when HTTP/2 is asked for without its codec."""
    return load_tls(config, http2=http2.serves_http2(config))


class Server:
    """Serve ``app`` on already-bound sockets until told to stop."""

    def __init__(
        self,
        app: ServedApp,
        config: Config | None = None,
        on_max_requests: Callable[[], None] | None = None,
        tls: ServerTLS | None = None,
    ) -> None:
        """``tls``: server_tls(config), when the caller loaded it already (the CLI
        does, to fail before the app is imported); else serve() loads it."""
        self.app = app
        self.config = config or Config()
        self._tls = tls
        #: Called once config.max_requests requests have started: by default this
        #: server drains and stops; a worker asks its master for a replacement.
        self.on_max_requests = on_max_requests or self.request_stop
        self._listeners: list[Listener] = []
        self._stop: asyncio.Event | None = None
        self._tick: asyncio.TimerHandle | None = None
        self.state: ServerState | None = None
        self.started = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------
    async def serve(self, sockets: list[socket.socket], install_signal_handlers: bool = True) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # Before startup: a bad certificate fails fast.
        tls = self._tls if self._tls is not None else server_tls(self.config)
        await self.app.startup()
        dispatch: Dispatch = self.app.dispatch
        if self.config.max_requests:
            dispatch = self._counted(dispatch, self.config.max_requests, loop)
        state = self.state = ServerState(self.config, dispatch, loop, tls)

        try:
            handles = acceptors(loop)
            # A handshake must finish within the head timeout too (the loops'
            # default is 60 s): TLS slowloris. See SHUTDOWN_TIMEOUT.
            secure: dict[str, Any] = (
                {}
                if tls is None
                else {
                    "ssl": tls.context,
                    "ssl_handshake_timeout": self.config.head_timeout,
                    "ssl_shutdown_timeout": TLS_SHUTDOWN_TIMEOUT,
                }
            )
            for sock in sockets:
                defer_accept(sock, self.config.head_timeout)
                protocol = ConnectionFactory(state, sock.getsockname())
                # The extra handles listen on duplicates of the socket (see acceptors).
                listener = Listener(loop, sock, protocol, {"backlog": self.config.backlog, **secure}, handles)
                self._listeners.append(listener)
                await listener.start()
            if install_signal_handlers:
                self._install_signal_handlers(loop)
            self._schedule_tick()
            logger.debug("Handler coroutines: %s", HANDLER_PATH)
            logger.debug("Hot path: %s", COMPILED_STATUS)
            self.started.set()
            await self._stop.wait()
        finally:
            await self._drain(state)
            await self.app.shutdown()

    def _counted(self, dispatch: Dispatch, limit: int, loop: asyncio.AbstractEventLoop) -> Dispatch:
        """``dispatch`` that calls on_max_requests when request ``limit`` starts.

        Installed only when the limit is set, so without it the engine calls the
        app's dispatch directly and counting costs nothing; with it, one call.
        """
        left = limit

        def counted(ex: Exchange) -> Coroutine[Any, Any, Any] | None:
            nonlocal left
            left -= 1
            if left == 0:
                logger.info("Served %d requests (--limit-max-requests); retiring", limit)
                loop.call_soon(self.on_max_requests)
            return dispatch(ex)

        return counted

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
        if isinstance(state.loop, asyncio.selector_events.BaseSelectorEventLoop):
            # asyncio's selector loop sets up an accepted connection one task
            # step later, and that step fails silently once the server is closed:
            # the connection is dropped, its request reset (seen under SIGHUP
            # rotation). Stop accepting first, let those steps run, then close.
            for server in self._servers():
                for sock in server.sockets if isinstance(server, asyncio.Server) else ():
                    state.loop.remove_reader(sock.fileno())
            for _ in range(2):
                await asyncio.sleep(0)
        for listener in self._listeners:
            listener.close()
        for ws in list(state.websockets):
            ws.shutdown()
        deadline = state.loop.time() + self.config.graceful_shutdown_timeout
        # A connection accepted just before the listener closed may not have
        # reached connection_made, or sent its first request, yet: closing it as
        # idle (or exiting without it) resets a request sent in good faith, as
        # seen under worker rotation (SIGHUP, --limit-max-requests). A short
        # grace lets such requests in; they are answered with Connection: close.
        # An idle connection whose request bytes wait unread in the kernel (it
        # was set up late, or a keep-alive client just sent) is not idle either:
        # closing it would answer that request with a reset.
        await asyncio.sleep(_ACCEPT_GRACE)
        for conn in list(state.connections):
            if conn.is_idle():
                conn.close()
            else:
                conn.announce_shutdown()  # HTTP/2: GOAWAY, in-flight streams go on
        while (state.connections or state.websockets) and state.loop.time() < deadline:
            await asyncio.sleep(0.05)
            for conn in list(state.connections):
                if conn.is_idle():
                    conn.close()
        # A connection closed already and lingering (transports.linger) owes nothing.
        unfinished = sum(not conn.closed for conn in state.connections) + len(state.websockets)
        if unfinished:
            logger.warning("Graceful shutdown timed out; closing %d connection(s)", unfinished)
        if state.connections or state.websockets:
            for conn in list(state.connections):
                conn.transport.abort()
            for ws in list(state.websockets):
                ws.abort()
        if self._tick is not None:
            self._tick.cancel()
        state.runners.close()
        for listener in self._listeners:
            await listener.wait_closed()

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """One per listening socket: its handles (see engine/accepting.py)."""
        return tuple(self._listeners)

    def _servers(self) -> list[asyncio.AbstractServer]:
        return [server for listener in self._listeners for server in listener.servers]

    # -- the tick: Date header and timeouts, once a second ---------------------------------
    def _schedule_tick(self) -> None:
        state = self.state
        assert state is not None
        self._tick = state.loop.call_later(_TICK, self._on_tick)

    def _on_tick(self) -> None:
        """Refresh the clock; close idle connections, answer slow heads with 408.

        Stamps are read as engine/endings.py's docstring says: a positive one was taken
        from the clock before this refresh, and the event happened somewhere
        between that tick and this one. Under overload that can be seconds (a loop
        pass reading thousands of sockets runs no timers), and timing from the stale
        clock closed connections that had just been answered, their next request
        already in the socket. So each positive stamp becomes this tick's time,
        made negative to mark it done, and the timeout runs from there. A
        connection is then closed only if still idle by is_idle (nothing read,
        queued, handled or unread) and done writing; a head times out only if no
        more of it waits unread.
        """
        state = self.state
        assert state is not None
        state.refresh()
        now = state.clock
        config = self.config
        keep_alive = config.keep_alive_timeout - _CLOCK_GRAIN
        head_timeout = config.head_timeout - _CLOCK_GRAIN
        for conn in list(state.connections):
            conn.sweep(now, keep_alive, head_timeout)
        state.runners.trim()
        for listener in self._listeners:
            listener.settle()
        self._schedule_tick()


def acceptors(loop: asyncio.AbstractEventLoop) -> int:
    """How many listening handles each socket gets on ``loop``.

    libuv, under uvloop, accepts one connection per loop pass and leaves the rest
    to the next pass (libuv PR #3696, 2022: the second accept() of a pass mostly
    fails with EAGAIN). A pass of a busy server runs every ready handler, so a
    burst of new connections waits one whole pass per connection: 100 clients
    connecting to a FastAPI app already serving 100 waited up to 0.6 s (wrk p99
    at c=100: 276 ms, against 18 ms with more handles), and with a new
    connection per request every connection cost a pass of its own (native hello,
    ``Connection: close``: 12.2k req/s, 19.2k with more handles). Each extra
    handle, on a duplicate of the listening socket, accepts one more connection
    per pass; when fewer are waiting, the rest get EAGAIN, one cheap system call
    each. asyncio's own loop accepts up to the backlog per pass: one handle.
    ``BLAZEASGI_UVLOOP_ACCEPTORS`` overrides the count under uvloop (1: libuv's
    own behaviour), for measurements.
    """
    if not type(loop).__module__.startswith("uvloop"):
        return 1
    override = os.environ.get("BLAZEASGI_UVLOOP_ACCEPTORS", "")
    return max(1, int(override)) if override.isdigit() else UVLOOP_ACCEPTORS


def defer_accept(sock: socket.socket, seconds: float) -> None:
    """Have the kernel hand ``sock``'s connections over once their first bytes arrive
    (Linux's TCP_DEFER_ACCEPT), waiting up to about ``seconds`` for them.

    Issue 18: under overload the accept queue stays full for seconds, and the kernel
    drops the handshake's last ACK and the request behind it; the client, connected,
    resends the request later. Meanwhile the kernel retries its SYN-ACK, and once
    the queue is long it gives such a half-open connection only two retries (7 s)
    before forgetting it: the request resent after that is answered with a reset
    (wrk: read errors, nstat: TcpExtSyncookiesFailed). A deferring listener keeps
    a connection whose ACK it dropped until the deferral ends, and takes it in only
    with its request; that takes a deferral past the pruned retries (8 s or more,
    as the default head timeout is). A client that connects and sends nothing
    reaches the server after the deferral (then the keep-alive timeout closes it);
    HTTP clients always speak first. No-op elsewhere (not Linux, UNIX sockets,
    ``seconds`` <= 0).
    """
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is None or seconds <= 0 or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, math.ceil(seconds))
    except OSError:  # pragma: no cover - a socket type that refuses it: serve without
        pass


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
