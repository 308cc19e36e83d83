"""The native Request: a thin, lazy view over the engine's Exchange."""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import unquote

from ..engine.exchange import Exchange
from ..proxy import Forwarded, ProxyHeaders
from .datastructures import Headers, QueryParams


class Request:
    # Lazily filled fields default at class level: a Request costs two stores
    # (measured 0.2 us less than six slot stores per request).
    _headers: Headers | None = None
    _query: QueryParams | None = None
    _path: str | None = None
    _body: bytes | None = None
    _seen: Forwarded | None = None
    #: The App's proxy-header rules, None to ignore proxy headers. Set on the App's
    #: own subclass (see ``behind``), so that a Request costs no third store.
    _proxy: ProxyHeaders | None = None

    def __init__(self, ex: Exchange, path_params: dict[str, Any]) -> None:
        self._ex = ex
        self.path_params = path_params

    @classmethod
    def behind(cls, proxy: ProxyHeaders | None) -> type[Request]:
        """This class, reading client, scheme and host through ``proxy``'s rules."""
        attributes = {"_proxy": proxy, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        return cast("type[Request]", type(cls.__name__, (cls,), attributes))

    @classmethod
    def proxy_rules(cls) -> ProxyHeaders | None:
        """The proxy-header rules this class reads client, scheme and host through."""
        return cls._proxy

    def _forwarded(self) -> Forwarded:
        """client, scheme and host as a trusted proxy reports them (the request has
        proxy fields: ``Exchange.noted_fields``); computed once."""
        seen = self._seen
        if seen is None:
            info = self._ex.info
            proxy = self._proxy
            if proxy is not None:
                seen = proxy.resolve(self._ex.headers, info.client, info.scheme)
            if seen is None:
                seen = Forwarded(info.client, info.scheme, None)
            self._seen = seen
        return seen

    @property
    def method(self) -> str:
        return self._ex.method

    @property
    def path(self) -> str:
        """The percent-decoded path."""
        path = self._path
        if path is None:
            path = self._path = unquote(self._ex.path.decode("ascii"))
        return path

    @property
    def raw_path(self) -> bytes:
        return self._ex.path

    @property
    def query_string(self) -> bytes:
        return self._ex.query_string

    @property
    def query_params(self) -> QueryParams:
        query = self._query
        if query is None:
            query = self._query = QueryParams(self._ex.query_string)
        return query

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers(self._ex.headers)
        return headers

    @property
    def client(self) -> tuple[str, int] | None:
        """(address, port) of the client; behind a trusted proxy, the one it reports."""
        if self._ex.noted_fields:
            return self._forwarded().client
        return self._ex.info.client

    @property
    def http_version(self) -> str:
        return self._ex.http_version

    @property
    def scheme(self) -> str:
        """The scheme, "http" or "https"; behind a trusted proxy, the one the client used."""
        if self._ex.noted_fields:
            return self._forwarded().scheme
        return self._ex.info.scheme

    @property
    def host(self) -> str:
        """The Host the client asked for, with the port if it gave one.

        A trusted proxy's X-Forwarded-Host / Forwarded ``host=`` is used only when
        the App was configured with ``forwarded_host`` (``--forwarded-host``)."""
        ex = self._ex
        if ex.noted_fields:
            host = self._forwarded().host
            if host is not None:
                return host
        for name, value in ex.headers:
            if name == b"host":
                return value.decode("latin-1")
        server = ex.info.server  # HTTP/1.0 without Host: where it was received
        if server is None:
            return ""
        address = f"[{server[0]}]" if ":" in server[0] else server[0]
        default = 443 if self.scheme == "https" else 80
        return address if server[1] == default else f"{address}:{server[1]}"

    @property
    def url(self) -> str:
        """The URL the client asked for: scheme, host, raw path and query."""
        return f"{self.scheme}://{self.host}{self._ex.target.decode('latin-1')}"

    @property
    def tls(self) -> dict[str, Any] | None:
        """The connection's TLS facts, as in the ASGI ``tls`` extension (client
        certificate chain and name, tls_version, cipher_suite); None over plain HTTP."""
        return self._ex.info.tls

    @property
    def exchange(self) -> Exchange:
        """The engine-level exchange, for code that needs to go below the API."""
        return self._ex

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
