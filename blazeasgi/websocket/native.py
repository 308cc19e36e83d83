"""The native WebSocket API: ``@app.websocket("/ws")`` handlers.

```python
@app.websocket("/chat/{room}")
async def chat(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:               # str (text) or bytes (binary)
        await ws.send_text(f"{ws.path_params['room']}: {message}")
```

A handler that returns (or closes) without accepting refuses the connection with
403; one that returns a ``Response`` before accepting sends that response instead.
``receive()`` raises ``WebSocketDisconnect`` (with ``code`` and ``reason``) once the
client has gone; ``async for`` simply ends there. Sends wait while the client is
not reading fast enough.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

from ..engine.errors import ClientDisconnected
from ..engine.exchange import Exchange
from ..native.connectionview import ConnectionView
from ..native.responses import Response, _dump_json
from ..native.routing import Handler, Router
from ..proxy import ProxyHeaders
from .codec import Message, check_close
from .connection import WebSocketConnection
from .handshake import Handshake, accept, backend, handshake_or_reject, refuse

logger = logging.getLogger("blazeasgi.error")

_METHOD = "WEBSOCKET"  # the pseudo-method WebSocket routes are stored under


class WebSocketDisconnect(ClientDisconnected):
    """The WebSocket is closed: ``code`` and ``reason`` say how (1006: it dropped)."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class WebSocket(ConnectionView):
    """One WebSocket connection, as a native handler sees it: the connection view
    (native/connectionview.py, shared with Request) plus the session."""

    def __init__(
        self,
        ex: Exchange,
        path_params: dict[str, Any],
        handshake: Handshake,
        proxy: ProxyHeaders | None = None,
    ) -> None:
        self._ex = ex
        self._handshake = handshake
        self._proxy = proxy
        self._conn: WebSocketConnection | None = None
        self._refused = False
        self.path_params = path_params

    # -- the request (path, query, headers, client, host, url, tls: ConnectionView) ------
    @property
    def scheme(self) -> str:
        """The scheme, "ws" or "wss"; behind a trusted proxy, as the client connected."""
        return "wss" if self._http_scheme() == "https" else "ws"

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return self._handshake.subprotocols

    @property
    def accepted(self) -> bool:
        return self._conn is not None

    @property
    def refused(self) -> bool:
        """close() was called before accept(): the client got (or gets) a 403."""
        return self._refused

    @property
    def close_code(self) -> int | None:
        """How the connection ended (None while it is open)."""
        return self._conn.close_code if self._conn is not None else None

    @property
    def close_reason(self) -> str:
        return self._conn.close_reason if self._conn is not None else ""

    # -- handshake -------------------------------------------------------------------------
    async def accept(
        self, subprotocol: str | None = None, headers: Iterable[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Complete the handshake (101), optionally choosing one of ``subprotocols``."""
        if self._conn is not None or self._refused:
            raise RuntimeError("WebSocket.accept() called twice, or after close()")
        ex = self._ex
        if ex.disconnected:
            raise WebSocketDisconnect(1006)
        self._conn = accept(ex, self._handshake, subprotocol, headers or ())

    # -- receiving ---------------------------------------------------------------------------
    def _open(self) -> WebSocketConnection:
        conn = self._conn
        if conn is None:
            raise RuntimeError("WebSocket is not accepted yet: call accept() first")
        return conn

    async def receive(self) -> Message:
        """The next message: ``str`` (text) or ``bytes`` (binary)."""
        conn = self._open()
        message = await conn.receive()
        if message is None:
            raise WebSocketDisconnect(conn.close_code or 1006, conn.close_reason)
        return message

    async def receive_text(self) -> str:
        message = await self.receive()
        if type(message) is not str:
            raise TypeError("expected a text message, got a binary one")
        return message

    async def receive_bytes(self) -> bytes:
        message = await self.receive()
        if type(message) is not bytes:
            raise TypeError("expected a binary message, got a text one")
        return message

    async def receive_json(self) -> Any:
        return json.loads(await self.receive())

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        conn = self._conn
        if conn is None:
            conn = self._open()
        message = conn.take_ready()  # a message is waiting: no await needed
        if message is None:
            message = await conn.receive()
            if message is None:
                raise StopAsyncIteration
        return message

    # -- sending -------------------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        conn = self._conn
        if conn is None or conn.close_code is not None:
            conn = self._open()
            raise WebSocketDisconnect(conn.close_code or 1006, conn.close_reason)
        await conn.send(message)

    async def send_text(self, data: str) -> None:
        if type(data) is not str:
            raise TypeError(f"send_text() needs a str, not {type(data).__name__}")
        await self.send(data)

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_bytes() needs bytes, not {type(data).__name__}")
        await self.send(bytes(data))

    async def send_json(self, data: Any, binary: bool = False) -> None:
        encoded = _dump_json(data)
        await self.send(encoded if binary else encoded.decode("utf-8"))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close (before accept(): refuse the connection with 403)."""
        check_close(code, reason)
        conn = self._conn
        if conn is None:
            if not self._refused:
                self._refused = True
                ex = self._ex
                if not ex.disconnected and not ex.response_started:
                    refuse(ex, 403)
            return
        conn.close(code, reason)

    def session_ended(self, failed: bool) -> None:
        """The handler is done (``failed``: it raised): closes an accepted connection."""
        if self._conn is not None:
            self._conn.session_ended(failed)


class WebSocketRoutes:
    """The App's WebSocket routes (kept apart from HTTP routes: a plain GET to a
    WebSocket path gets the HTTP router's 404/405, not an upgrade error)."""

    def __init__(self) -> None:
        self.router = Router()
        #: The App's proxy-header rules, for WebSocket.client and .scheme.
        self.proxy: ProxyHeaders | None = None

    def add(self, path: str, handler: Handler) -> None:
        self.router.add(path, [_METHOD], handler)

    def dispatch(self, ex: Exchange, path: str) -> Coroutine[Any, Any, None] | None:
        """The session for an upgrade request to a WebSocket route, else None."""
        if ex.upgrade != b"websocket":
            return None
        endpoint, params, _ = self.router.resolve(path, _METHOD)
        if endpoint is None:
            return None
        name = backend(ex.info.config.ws)
        if name is None:
            return None
        converted: dict[str, Any] = dict(params)
        for param in endpoint.int_params:
            converted[param] = int(params[param])
        return _session(ex, endpoint.handler, converted, name, self.proxy)


async def _session(
    ex: Exchange, handler: Handler, params: dict[str, Any], backend_name: str, proxy: ProxyHeaders | None
) -> None:
    handshake = handshake_or_reject(ex, backend_name)
    if handshake is None:
        return
    ws = WebSocket(ex, params, handshake, proxy)
    failed = False
    try:
        result = handler(ws)
        if hasattr(result, "__await__"):
            result = await result
        if not ws.accepted and not ws.refused and not ex.response_started and not ex.disconnected:
            if isinstance(result, Response):
                pending = result.emit(ex)  # a denial response, e.g. 401; the engine closes after
                if pending is not None:
                    await pending
            else:
                refuse(ex, 403)
    except ClientDisconnected:
        pass  # WebSocketDisconnect included: the client went away, not an error
    except Exception:
        failed = True
        logger.exception("Exception in WebSocket handler for %s", ex.target.decode("latin-1"))
        if not ws.accepted and not ex.response_started and not ex.disconnected:
            refuse(ex, 500)
    finally:
        ws.session_ended(failed)
