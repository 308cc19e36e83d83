"""ASGI 3 over the engine: scope/receive/send mapped onto an ``Exchange``.

The adapter owns no HTTP framing: ``http.response.start`` is held until the first
``http.response.body`` so a response sent as start + one body message leaves in a
single write through ``Exchange.respond``; anything longer streams through
``Exchange.start``/``write``, which apply Content-Length, chunking and backpressure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Iterable
from types import CoroutineType
from typing import Any
from urllib.parse import unquote

from ..engine.errors import ClientDisconnected, ProtocolError
from ..engine.exchange import Exchange
from ..engine.http11 import HeadCache
from ..types import ASGIApp, Message
from .lifespan import Lifespan

ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
_DISCONNECT: Message = {"type": "http.disconnect"}


class ASGIAdapter:
    """Serve an ASGI 3 application on the engine."""

    def __init__(self, app: ASGIApp, root_path: str = "", lifespan: str = "auto") -> None:
        self.app = app
        self.root_path = root_path
        self._raw_root = root_path.encode("ascii")
        self.lifespan = Lifespan(app, lifespan)
        self.state = self.lifespan.state
        self.heads = HeadCache()

    async def startup(self) -> None:
        await self.lifespan.startup()

    async def shutdown(self) -> None:
        await self.lifespan.shutdown()

    def dispatch(self, ex: Exchange) -> Coroutine[Any, Any, None]:
        raw_path = ex.path
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:  # pragma: no cover - llhttp rejects these first
            raise ProtocolError(400, "Invalid request target") from None
        if "%" in path:
            path = unquote(path)
        if self.root_path:
            path = self.root_path + path
            raw_path = self._raw_root + raw_path
        conn = ex.conn
        cycle = HTTPCycle(ex, self.heads)
        coro = self.app(
            {
                "type": "http",
                "asgi": ASGI_VERSION,
                "http_version": ex.http_version,
                "server": conn.server,
                "client": conn.client,
                "scheme": conn.scheme,
                "method": ex.method,
                "root_path": self.root_path,
                "path": path,
                "raw_path": raw_path,
                "query_string": ex.query_string,
                "headers": ex.headers,
                "state": self.state.copy(),
            },
            cycle.receive,
            cycle.send,
        )
        if type(coro) is not CoroutineType:  # an awaitable that is not a coroutine
            coro = _await(coro)
        return coro


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


class HTTPCycle:
    """One request's ``receive`` and ``send``."""

    __slots__ = ("_body_done", "_heads", "ex")

    def __init__(self, ex: Exchange, heads: HeadCache) -> None:
        self.ex = ex
        self._heads = heads
        self._body_done = False

    async def receive(self) -> Message:
        ex = self.ex
        if self._body_done:
            if not ex.response_complete:
                await ex.wait_disconnect()
            return _DISCONNECT
        try:
            body, more = await ex.receive_body()
        except ClientDisconnected:
            self._body_done = True
            return _DISCONNECT
        if not more:
            self._body_done = True
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(self, message: Message) -> None:
        ex = self.ex
        kind = message["type"]
        if kind == "http.response.body":
            head = ex.held
            if head is None:
                if ex.status:
                    raise RuntimeError(
                        "Unexpected ASGI message 'http.response.body' sent, after response already completed."
                    )
                raise RuntimeError("Expected ASGI message 'http.response.start' before 'http.response.body'.")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if ex.conn.closed:
                raise ClientDisconnected("client disconnected")
            if not ex.response_started:
                if not more and (head.content_length is None or head.content_length == len(body)):
                    ex.held = None
                    ex.respond(ex.status, head.block, body, head.close)
                    return
                ex.start(ex.status, head.block, head.content_length, head.close)
            if not more:
                ex.held = None
            await ex.write(body, more)
        elif kind == "http.response.start":
            if ex.status:
                raise RuntimeError(
                    "Unexpected ASGI message 'http.response.start' sent, after response already started."
                )
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 599:
                raise RuntimeError(f"Invalid HTTP status code {status!r} in response.")
            headers: Iterable[tuple[bytes, bytes]] = message.get("headers", ())
            # HeadCache.get inlined for a hit (the app reusing a header list).
            entry = self._heads.entries.get(id(headers))
            # Held until the first body message so that start + body leave in one
            # write; the engine sends it if the app returns without a body.
            ex.held = entry[1] if entry is not None and entry[0] == headers else self._heads.get(headers)
            ex.status = status
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} for an HTTP connection.")
