"""The native App: routes answered straight off the engine, optional ASGI fallback."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..asgi.adapter import ASGIAdapter
from ..engine.errors import ProtocolError
from ..engine.exchange import Exchange
from ..settings import InterfaceSettings
from ..types import ASGIApp
from .request import Request
from .responses import JSONResponse, PlainTextResponse, Response
from .routing import Endpoint, Handler, Router

if TYPE_CHECKING:
    from ..websocket.native import WebSocketRoutes

logger = logging.getLogger("blazeasgi.error")

Lifespan = Callable[["App"], contextlib.AbstractAsyncContextManager[Any]]

_NOT_FOUND = PlainTextResponse(b"Not Found", 404)


def to_response(result: Any) -> Response:
    """What a handler returned, as a Response (bytes, str, dict and list allowed)."""
    if isinstance(result, Response):
        return result
    if isinstance(result, (dict, list)):
        return JSONResponse(result)
    if isinstance(result, str):
        return PlainTextResponse(result)
    if isinstance(result, bytes):
        return Response(result, media_type="application/octet-stream")
    if result is None:
        return Response(b"", 204)
    raise TypeError(
        f"handler returned {type(result).__name__}; expected a Response, bytes, str, dict or list"
    )


class App:
    """Native handlers: ``@app.get("/")`` etc. ``fallback`` serves every other
    request (and the lifespan) through the ASGI adapter: mixed mode."""

    def __init__(
        self,
        fallback: ASGIApp | None = None,
        lifespan: Lifespan | None = None,
        on_startup: list[Callable[[], Awaitable[None] | None]] | None = None,
        on_shutdown: list[Callable[[], Awaitable[None] | None]] | None = None,
    ) -> None:
        self.router = Router()
        self._static = self.router.static
        self.fallback = fallback
        self._adapter: ASGIAdapter | None = None
        self._request_class = Request
        self._websockets: WebSocketRoutes | None = None
        # Until the server calls configure(): the defaults (proxy headers on, trusted
        # from 127.0.0.1,::1 or $FORWARDED_ALLOW_IPS).
        self.configure(InterfaceSettings())
        self.lifespan = lifespan
        self.on_startup = list(on_startup or [])
        self.on_shutdown = list(on_shutdown or [])
        self.state: dict[str, Any] = {}
        self._lifespan_cm: contextlib.AbstractAsyncContextManager[Any] | None = None

    def configure(self, settings: InterfaceSettings) -> None:
        """Called by the server with the CLI's settings: the ASGI ones for the
        fallback, the proxy-header rules (blazeasgi/proxy.py) for both interfaces."""
        self._request_class = Request.behind(settings.proxy)
        if self._websockets is not None:
            self._websockets.proxy = settings.proxy
        if self.fallback is not None:
            self._adapter = ASGIAdapter(self.fallback, settings)

    # -- registration ------------------------------------------------------------------
    def route(self, path: str, methods: list[str] | None = None) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.router.add(path, methods or ["GET"], handler)
            return handler

        return register

    def add_route(self, path: str, handler: Handler, methods: list[str] | None = None) -> None:
        self.router.add(path, methods or ["GET"], handler)

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ["GET"])

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ["POST"])

    def put(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ["PUT"])

    def patch(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ["PATCH"])

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ["DELETE"])

    def websocket(self, path: str) -> Callable[[Handler], Handler]:
        """Register a WebSocket handler (see blazeasgi/websocket/native.py)."""

        def register(handler: Handler) -> Handler:
            if self._websockets is None:
                from ..websocket.native import WebSocketRoutes

                self._websockets = WebSocketRoutes()
                self._websockets.proxy = self._request_class.proxy_rules()
            self._websockets.add(path, handler)
            return handler

        return register

    # -- lifespan -------------------------------------------------------------------------
    async def startup(self) -> None:
        if self._adapter is not None:
            await self._adapter.startup()
        for hook in self.on_startup:
            result = hook()
            if result is not None:
                await result
        if self.lifespan is not None:
            self._lifespan_cm = self.lifespan(self)
            state = await self._lifespan_cm.__aenter__()
            if state:
                self.state.update(state)

    async def shutdown(self) -> None:
        if self._lifespan_cm is not None:
            await self._lifespan_cm.__aexit__(None, None, None)
        for hook in self.on_shutdown:
            result = hook()
            if result is not None:
                await result
        if self._adapter is not None:
            await self._adapter.shutdown()

    # -- the hot path ---------------------------------------------------------------------
    def dispatch(self, ex: Exchange) -> Coroutine[Any, Any, None] | None:
        # The App's own field first: ex.upgrade is a compiled Exchange's, a
        # descriptor call from here.
        if self._websockets is not None and ex.upgrade is not None:
            # Before HTTP routes, so a WebSocket route may share a path with a GET.
            session = self._websockets.dispatch(ex, unquote(ex.path.decode("ascii")))
            if session is not None:
                return session
        # Hot path: a static route under its raw path, one dict lookup each.
        route = self._static.get(ex.path)
        endpoint = route.endpoints.get(ex.method) if route is not None else None
        if endpoint is not None:
            # (a static route's empty path_params is made on first use)
            request = self._request_class(ex, None)
        else:
            try:
                decoded = unquote(ex.path.decode("ascii"))
            except UnicodeDecodeError:  # pragma: no cover - llhttp rejects these first
                raise ProtocolError(400, "Invalid request target") from None
            endpoint, params, partial = self.router.resolve(decoded, ex.method)
            if endpoint is None:
                if self._adapter is not None:
                    return self._adapter.dispatch(ex)
                if partial is not None:
                    return PlainTextResponse(b"Method Not Allowed", 405, {"allow": partial.allow}).emit(ex)
                return _NOT_FOUND.emit(ex)
            if params and endpoint.int_params:
                params = _convert(endpoint, params)
            request = self._request_class(ex, params)
        if endpoint.is_async:
            return self._run_async(endpoint, request, ex)
        result = endpoint.handler(request)
        if isinstance(result, Response):
            return result.emit(ex)
        return to_response(result).emit(ex)

    async def _run_async(self, endpoint: Endpoint, request: Request, ex: Exchange) -> None:
        result = await endpoint.handler(request)
        pending = to_response(result).emit(ex)
        if pending is not None:
            await pending


def _convert(endpoint: Endpoint, params: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = dict(params)
    for name in endpoint.int_params:
        converted[name] = int(converted[name])
    return converted
