"""ASGI WebSockets (HTTP & WebSocket spec 2.5) over the engine's protocol switch.

``websocket_session`` is what ``ASGIAdapter.dispatch`` returns for an upgrade to
``websocket``: a coroutine the engine runs as the request's handler. The app gets
``websocket.connect``; its ``websocket.accept`` writes the 101 and moves the socket to
a ``WebSocketConnection`` (over HTTP/2: a 200, and the stream is moved);
``websocket.close`` before that answers 403, and the
``websocket.http.response`` extension (advertised in ``scope["extensions"]``) lets it
answer any HTTP response instead. After the accept: ``websocket.receive`` /
``websocket.send``, ``websocket.close`` with code and reason, and
``websocket.disconnect`` with the peer's code and reason (1006 if the socket dropped,
1001 on server shutdown). ``send`` after the disconnect raises ``ClientDisconnected``
(an ``OSError``, spec 2.4), which Starlette turns into ``WebSocketDisconnect``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..engine.errors import ClientDisconnected
from ..engine.exchange import Exchange
from ..engine.http11 import ResponseHead, build_head
from ..types import Message
from .codec import check_close
from .connection import WebSocketConnection
from .handshake import Handshake, accept, backend, handshake_or_reject, refuse

if TYPE_CHECKING:
    from ..asgi.adapter import ASGIAdapter

logger = logging.getLogger("blazeasgi.error")

ASGI_VERSION = {"version": "3.0", "spec_version": "2.5"}
_CONNECT: Message = {"type": "websocket.connect"}

# ASGIWebSocket._phase
_CONNECTING, _OPEN, _RESPONSE, _DONE = 0, 1, 2, 3


def websocket_session(
    adapter: ASGIAdapter, ex: Exchange, scope: dict[str, Any]
) -> Coroutine[Any, Any, None] | None:
    """The handler for an ``Upgrade: websocket`` request; None for other upgrades and
    when WebSockets are off (``--ws none``, or no library installed): the request is
    then served as plain HTTP (and the engine closes the connection after it).
    ``scope``: the HTTP scope ``ASGIAdapter.dispatch`` built for the request, which
    the session's scope is made from (the keys both share are built there only)."""
    if ex.upgrade != b"websocket":
        return None
    name = backend(ex.info.config.ws)
    if name is None:
        return None
    return ASGIWebSocket(adapter, ex, scope).run(name)


class ASGIWebSocket:
    """One WebSocket's ``receive`` and ``send``, from handshake to close."""

    __slots__ = (
        "_app_closed",
        "_connect_sent",
        "_handshake",
        "_http_scope",
        "_phase",
        "_response",
        "adapter",
        "ex",
        "ws",
    )

    def __init__(self, adapter: ASGIAdapter, ex: Exchange, scope: dict[str, Any]) -> None:
        self.adapter = adapter
        self.ex = ex
        self._http_scope = scope
        self.ws: WebSocketConnection | None = None
        self._phase = _CONNECTING
        self._connect_sent = False
        self._app_closed = False
        self._handshake: Handshake | None = None
        self._response: ResponseHead | None = None

    async def run(self, backend_name: str) -> None:
        ex = self.ex
        handshake = self._handshake = handshake_or_reject(ex, backend_name)
        if handshake is None:
            return
        failed = False
        try:
            await self.adapter.app(self._scope(handshake), self.receive, self.send)
        except ClientDisconnected:
            pass  # the client left: nothing to report
        except BaseException as exc:
            failed = True
            if isinstance(exc, asyncio.CancelledError):
                logger.error("WebSocket handler for %s was cancelled", ex.target.decode("latin-1"))
            else:
                logger.error("Exception in ASGI application (WebSocket)", exc_info=exc)
            if self._phase == _CONNECTING and not ex.response_started and not ex.disconnected:
                refuse(ex, 500)
                self._phase = _DONE
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            if self._phase == _CONNECTING and not ex.disconnected:
                logger.error("ASGI callable returned without completing the WebSocket handshake")
                refuse(ex, 500)
        finally:
            ws = self.ws
            if ws is not None:
                ws.session_ended(failed)

    def _scope(self, handshake: Handshake) -> dict[str, Any]:
        # The request's HTTP scope (ASGIAdapter.dispatch: path under root_path, client,
        # scheme and headers through the proxy-header rules, state), as a WebSocket's.
        scope = self._http_scope
        del scope["method"]
        extensions: dict[str, Any] = {"websocket.http.response": {}}
        tls = scope["extensions"].get("tls")
        if tls is not None:
            extensions["tls"] = tls
        scope["type"] = "websocket"
        scope["asgi"] = ASGI_VERSION
        scope["scheme"] = "wss" if scope["scheme"] in ("https", "wss") else "ws"
        scope["subprotocols"] = handshake.subprotocols
        scope["extensions"] = extensions
        return scope

    async def receive(self) -> Message:
        ws = self.ws
        if ws is not None:
            message = ws.take_ready()  # a message is waiting: no await needed
            if message is None:
                message = await ws.receive()
            if message is None:
                return {"type": "websocket.disconnect", "code": ws.close_code, "reason": ws.close_reason}
            if type(message) is str:
                return {"type": "websocket.receive", "text": message}
            return {"type": "websocket.receive", "bytes": message}
        if not self._connect_sent:
            self._connect_sent = True
            return _CONNECT
        if self._phase == _CONNECTING:
            # Nothing arrives before the accept; only the client leaving ends this.
            await self.ex.wait_disconnect()
        return {"type": "websocket.disconnect", "code": 1006, "reason": ""}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        ws = self.ws
        if ws is not None:
            if kind == "websocket.send":
                if ws.close_code is not None:
                    if self._app_closed:
                        raise RuntimeError(
                            f"Unexpected ASGI message {kind!r}, after sending 'websocket.close'."
                        )
                    raise ClientDisconnected("WebSocket is closed")
                text = message.get("text")
                if text is not None:
                    await ws.send(text)
                    return
                data = message.get("bytes")
                if data is None:
                    raise RuntimeError("'websocket.send' needs 'text' or 'bytes'.")
                await ws.send(bytes(data))
            elif kind == "websocket.close":
                code = message.get("code", 1000) or 1000
                reason = message.get("reason") or ""
                check_close(code, reason)
                self._app_closed = True
                ws.close(code, reason)
            else:
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}."
                )
            return
        phase = self._phase
        ex = self.ex
        if phase == _CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._phase = _DONE
                if ex.disconnected:
                    raise ClientDisconnected("client disconnected")
                refuse(ex, 403)
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if type(status) is not int or not 100 <= status <= 599:
                    raise RuntimeError(f"Invalid HTTP status code {status!r} in response.")
                self._response = build_head(message.get("headers", ()))
                ex.status = status
                self._phase = _RESPONSE
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', but got {kind!r}."
                )
        elif phase == _RESPONSE:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body', but got {kind!r}.")
            head = self._response
            assert head is not None
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if ex.disconnected:
                raise ClientDisconnected("client disconnected")
            if not more:
                self._phase = _DONE
            if not ex.response_started:
                if not more and (head.content_length is None or head.content_length == len(body)):
                    ex.respond(ex.status, head.block, body, close=True)
                    return
                ex.start(ex.status, head.block, head.content_length, close=True)
            await ex.write(body, more)
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}: the WebSocket handshake is over.")

    def _accept(self, message: Message) -> None:
        ex = self.ex
        if ex.disconnected:
            raise ClientDisconnected("client disconnected")
        handshake = self._handshake
        assert handshake is not None
        self.ws = accept(ex, handshake, message.get("subprotocol"), message.get("headers") or ())
        self._phase = _OPEN
