"""The native Request: a thin, lazy view over the engine's Exchange (its head and
connection through ConnectionView, shared with the native WebSocket)."""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterator
from typing import Any, cast

from ..engine.exchange import Exchange
from ..proxy import ProxyHeaders
from .connectionview import ConnectionView


class Request(ConnectionView):
    """One HTTP request, as a native handler sees it: the connection view
    (connectionview.py) plus the method and the body."""

    _body: bytes | None = None
    #: Set only for a route with parameters (see App.dispatch); else made on first use.
    _path_params: dict[str, Any] | None = None

    def __init__(self, ex: Exchange, path_params: dict[str, Any] | None = None) -> None:
        self._ex = ex
        self._path_params = path_params

    @property
    def path_params(self) -> dict[str, Any]:
        """The route's path parameters by name (converted as the route declares)."""
        params = self._path_params
        if params is None:
            params = self._path_params = {}
        return params

    @path_params.setter
    def path_params(self, params: dict[str, Any]) -> None:
        self._path_params = params

    @classmethod
    def behind(cls, proxy: ProxyHeaders | None) -> type[Request]:
        """This class, reading client, scheme and host through ``proxy``'s rules."""
        attributes = {"_proxy": proxy, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        return cast("type[Request]", type(cls.__name__, (cls,), attributes))

    @classmethod
    def proxy_rules(cls) -> ProxyHeaders | None:
        """The proxy-header rules this class reads client, scheme and host through."""
        return cls._proxy

    @property
    def method(self) -> str:
        return self._ex.method

    async def body(self) -> bytes:
        body = self._body
        if body is None:
            body = self._body = await self._ex.read_body()
        return body

    async def json(self) -> Any:
        return _json.loads(await self.body())

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives, de-chunked; reading paces the client."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        more = True
        while more:
            data, more = await self._ex.receive_body()
            if data:
                yield data

    def __repr__(self) -> str:
        return f"<Request {self.method} {self._ex.target.decode('latin-1')!r}>"
