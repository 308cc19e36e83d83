"""ASGI 3 over the engine: scope/receive/send mapped onto an ``Exchange``.

The adapter owns no HTTP framing: ``http.response.start`` is held until the first
``http.response.body`` so a response sent as start + one body message leaves in a
single write through ``Exchange.respond``; anything longer streams through
``Exchange.start``/``write``, which apply Content-Length, chunking and backpressure.

Extensions advertised in ``scope["extensions"]``:

* ``http.response.pathsend`` and ``http.response.zerocopysend``: files sent with the
  loop's ``sendfile`` (``Exchange.write_file``), like the native ``FileResponse``;
* ``http.response.early_hint``: a ``103 Early Hints`` interim response;
* ``http.response.trailers``: only when the request carried ``TE: trailers``;
* ``tls``: when serving TLS, the connection's certificates, version and cipher
  suite (blazeasgi.tls), computed once per connection.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Awaitable, Coroutine
from types import CoroutineType
from typing import Any, BinaryIO, Final, NoReturn
from urllib.parse import unquote

from ..engine.errors import ClientDisconnected, ProtocolError
from ..engine.exchange import Exchange
from ..engine.http11 import HeadCache, HeaderFields, ResponseHead, build_head
from ..proxy import ProxyHeaders, with_host
from ..settings import InterfaceSettings
from ..types import ASGIApp, Message
from ..websocket.asgi import websocket_session
from .lifespan import Lifespan

# HTTP spec 2.3, as uvicorn states it. 2.4 (send() on a closed connection raises
# OSError) is implemented too, but Starlette switches at 2.4 from listening for
# http.disconnect to waiting for send() to fail: an idle StreamingResponse (SSE
# waiting for an event) would then outlive its client. See compat/README.md.
# Final: compiled, a Final constant is a C static, a plain module name a dict lookup
# at every use (~140 instructions).
ASGI_VERSION: Final = {"version": "3.0", "spec_version": "2.3"}
_DISCONNECT: Final[Message] = {"type": "http.disconnect"}

_EXTENSIONS: Final[dict[str, dict[str, Any]]] = {
    "http.response.pathsend": {},
    "http.response.zerocopysend": {},
    "http.response.early_hint": {},
}
_EXTENSIONS_TRAILERS: dict[str, dict[str, Any]] = {**_EXTENSIONS, "http.response.trailers": {}}


def pathsend_safe() -> bool:
    """False when a Starlette older than 0.47 is loaded.

    Starlette's FileResponse sends ``http.response.pathsend`` when it is offered
    (since 0.36), but its GZipMiddleware only learned to pass that message on in
    0.47: before, it drops it, and every FileResponse behind GZip becomes a 500.
    """
    starlette = sys.modules.get("starlette")
    if starlette is None:
        return True
    numbers = re.findall(r"\d+", str(getattr(starlette, "__version__", "")))[:2]
    return len(numbers) < 2 or (int(numbers[0]), int(numbers[1])) >= (0, 47)


class _AnyValue:
    """Equal to anything: ``(b"te", _ANY) in headers`` finds a TE field at C speed."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


_ANY = _AnyValue()
_TE_FIELD: Final[Any] = (b"te", _ANY)
_COROUTINE: Final = CoroutineType


def _te_trailers(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"te" and b"trailers" in [t.split(b";")[0].strip() for t in value.lower().split(b",")]:
            return True
    return False


class ASGIAdapter:
    """Serve an ASGI 3 application on the engine."""

    def __init__(self, app: ASGIApp, settings: InterfaceSettings | None = None) -> None:
        """``settings``: root_path, lifespan mode and proxy-header rules; by default
        InterfaceSettings() (no root_path, lifespan "auto", proxy headers trusted
        from 127.0.0.1,::1 or $FORWARDED_ALLOW_IPS)."""
        if settings is None:
            settings = InterfaceSettings()
        self.app = app
        self.root_path = settings.root_path
        self._raw_root = settings.root_path.encode("ascii")
        self.lifespan = Lifespan(app, settings.lifespan)
        self.state = self.lifespan.state
        self.heads = HeadCache()
        self.proxy: ProxyHeaders | None = settings.proxy
        # Every request's scope starts as a copy of this (the keys in order, the values
        # that never change filled in) and has the rest stored: compiled, a 14-key
        # dict display cost 2.9k instructions a request, the copy and 11 stores ~1.2k.
        self._scope: dict[str, Any] = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": None,
            "server": None,
            "client": None,
            "scheme": None,
            "method": None,
            "root_path": self.root_path,
            "path": None,
            "raw_path": None,
            "query_string": None,
            "headers": None,
            "state": None,
            "extensions": None,
        }
        self._extensions = _EXTENSIONS
        self._extensions_trailers = _EXTENSIONS_TRAILERS
        if not pathsend_safe():
            self._extensions = {k: v for k, v in _EXTENSIONS.items() if k != "http.response.pathsend"}
            self._extensions_trailers = {**self._extensions, "http.response.trailers": {}}

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
        info = ex.info
        headers = ex.headers
        client = info.client
        scheme = info.scheme
        trailers = False
        if ex.noted_fields:  # TE or proxy fields in this request (see blazeasgi/proxy.py)
            proxy = self.proxy
            if proxy is not None:
                seen = proxy.resolve(headers, client, scheme)
                if seen is not None:
                    client, scheme = seen.client, seen.scheme
                    if seen.host is not None:
                        headers = with_host(headers, seen.host)
            if _TE_FIELD in headers:
                trailers = _te_trailers(headers)
        extensions = (self._extensions_trailers if trailers else self._extensions).copy()
        if info.tls is not None:  # the same dict for every request of the connection
            extensions["tls"] = info.tls
        # The one place a scope is built: a WebSocket's shares every key but the
        # method (blazeasgi/websocket/asgi.py makes it one from this).
        scope = self._scope.copy()
        scope["http_version"] = ex.http_version
        scope["server"] = info.server
        scope["client"] = client
        scope["scheme"] = scheme
        scope["method"] = ex.method
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = ex.query_string
        scope["headers"] = headers
        scope["state"] = self.state.copy()
        scope["extensions"] = extensions
        if ex.upgrade is not None:  # WebSockets: see blazeasgi/websocket/asgi.py
            session = websocket_session(self, ex, scope)
            if session is not None:
                return session
        cycle = HTTPCycle(ex, self.heads, trailers)
        coro = self.app(scope, cycle.receive, cycle.send)
        if type(coro) is not _COROUTINE:  # an awaitable that is not a coroutine
            coro = _await(coro)
        return coro


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


# HTTPCycle._trailers: none; advertised (the client sent TE: trailers); announced by
# the app in http.response.start, body still open; body ended, trailers to come.
_NONE: Final = 0
_ADVERTISED: Final = 1
_WAIT: Final = 2
_BODY_DONE: Final = 3


class HTTPCycle:
    """One request's ``receive`` and ``send``."""

    __slots__ = ("_body_done", "_heads", "_trailer_lines", "_trailers", "ex")

    def __init__(self, ex: Exchange, heads: HeadCache, trailers: bool = False) -> None:
        self.ex = ex
        self._heads = heads
        self._body_done = False
        self._trailers = _ADVERTISED if trailers else _NONE
        self._trailer_lines: list[bytes] | None = None

    async def receive(self) -> Message:
        ex = self.ex
        if self._body_done or ex.response_complete:
            # After the response (or the whole body) only the disconnect is left:
            # at once if the response is complete, as under uvicorn, else when
            # the client goes away.
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
        # Typed as a dict (every app sends dicts; another mapping is copied into one):
        # compiled, its reads are direct dict lookups where a Mapping's are generic
        # method calls (about 1k instructions a request for start + body).
        fields: dict[str, Any] = message if type(message) is dict else dict(message)
        kind = fields["type"]
        if kind == "http.response.body":
            head = ex.held
            if head is None:
                self._no_head(kind)
            body = fields.get("body", b"")
            more = fields.get("more_body", False)
            if ex.info.closed:
                raise ClientDisconnected("client disconnected")
            if self._trailers > _ADVERTISED:
                await self._body_before_trailers(head, body, more)
                return
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
            if ex.info.closed:
                raise ClientDisconnected("client disconnected")
            status = fields["status"]
            if type(status) is not int or not 100 <= status <= 599:
                raise RuntimeError(f"Invalid HTTP status code {status!r} in response.")
            headers: HeaderFields = fields.get("headers", ())
            # HeadCache.get inlined for a hit (the app reusing a header list).
            entry = self._heads.entries.get(id(headers))
            # Held until the first body message so that start + body leave in one
            # write; the engine sends it if the app returns without a body.
            ex.held = entry[2] if entry is not None and entry[0] == headers else self._heads.get(headers)
            ex.status = status
            if self._trailers and fields.get("trailers", False):
                self._trailers = _WAIT
        else:
            await self._send_extension(kind, fields)

    async def _body_before_trailers(self, head: ResponseHead, body: bytes, more: bool) -> None:
        ex = self.ex
        if self._trailers == _BODY_DONE:
            raise RuntimeError("Unexpected ASGI message 'http.response.body' after the body ended.")
        if not ex.response_started:
            ex.start(ex.status, head.block, head.content_length, head.close)
        if not more:  # the body ends here, the response waits for the trailers
            self._trailers = _BODY_DONE
        await ex.write(body, True)

    def _no_head(self, kind: str) -> NoReturn:
        if self.ex.status:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} sent, after response already completed.")
        raise RuntimeError(f"Expected ASGI message 'http.response.start' before {kind!r}.")

    # -- extensions (cold path) ---------------------------------------------------------
    async def _send_extension(self, kind: str, message: Message) -> None:
        ex = self.ex
        if kind == "http.response.pathsend":
            head = ex.held
            if head is None:
                self._no_head(kind)
            path = message["path"]
            with open(os.fspath(path), "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if head.content_length is not None and head.content_length != size:
                    raise RuntimeError(
                        f"Content-Length {head.content_length} does not match the size of {path!r} ({size})."
                    )
                await self._send_file(head, file, 0, size, more=False)
        elif kind == "http.response.zerocopysend":
            head = ex.held
            if head is None:
                self._no_head(kind)
            file = message["file"]
            opened: BinaryIO | None = None
            if isinstance(file, int):  # a bare descriptor: borrow it, do not close it
                file = opened = open(file, "rb", closefd=False)
            try:
                offset = message.get("offset")
                if offset is None:
                    offset = file.tell()
                count = message.get("count")
                if count is None:
                    count = max(0, os.fstat(file.fileno()).st_size - offset)
                await self._send_file(head, file, offset, count, message.get("more_body", False))
            finally:
                if opened is not None:
                    opened.close()
        elif kind == "http.response.trailers":
            await self._send_trailers(message)
        elif kind == "http.response.early_hint":
            links = message.get("links", ())
            if isinstance(links, (bytes, str)):
                raise RuntimeError("'links' in 'http.response.early_hint' must be a list of byte strings.")
            block = build_head([(b"link", link) for link in links]).block
            ex.send_informational(103, block)
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} for an HTTP connection.")

    async def _send_file(
        self, head: ResponseHead, file: BinaryIO, offset: int, count: int, more: bool
    ) -> None:
        ex = self.ex
        if ex.info.closed:
            raise ClientDisconnected("client disconnected")
        if not ex.response_started:
            length = head.content_length
            if length is None and not more and self._trailers != _WAIT:
                length = count  # the whole body is this file: no need to chunk it
            ex.start(ex.status, head.block, length, head.close)
        await ex.write_file(file, offset, count)
        if more:
            return
        if self._trailers == _WAIT:
            self._trailers = _BODY_DONE
            return
        ex.held = None
        await ex.end()

    async def _send_trailers(self, message: Message) -> None:
        ex = self.ex
        state = self._trailers
        if state < _WAIT:
            if ex.response_complete:
                return  # trailers nobody asked for, after the body: dropped
            raise RuntimeError("Unexpected ASGI message 'http.response.trailers': none were announced.")
        if state != _BODY_DONE:
            raise RuntimeError("Unexpected ASGI message 'http.response.trailers' before the body ended.")
        lines = self._trailer_lines
        if lines is None:
            lines = self._trailer_lines = []
        lines.append(build_head(message.get("headers", ())).block)
        if message.get("more_trailers", False):
            return
        self._trailers = _NONE
        ex.held = None
        await ex.end_with_trailers(b"".join(lines))
