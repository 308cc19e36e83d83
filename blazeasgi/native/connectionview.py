"""What a native Request and a native WebSocket both are: a lazy view of one
request head and of the connection it came on (Starlette's ``HTTPConnection``).

Path, query, headers, client, scheme, host, URL and TLS are computed here once
for both, so the two cannot drift. Proxy headers are read through the App's
rules (blazeasgi/proxy.py) only when the request has such fields
(``Exchange.noted_fields``), and then once per request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ..engine.exchange import Exchange
from ..proxy import Forwarded, ProxyHeaders
from .datastructures import Headers, QueryParams


class ConnectionView:
    # Lazily filled fields default at class level: a Request costs two stores
    # (measured 0.2 us less than six slot stores per request).
    _headers: Headers | None = None
    _query: QueryParams | None = None
    _path: str | None = None
    _seen: Forwarded | None = None
    #: The App's proxy-header rules, None to ignore proxy headers. A Request has
    #: them on the App's own subclass (Request.behind), so that it costs no third
    #: store; a WebSocket on the instance.
    _proxy: ProxyHeaders | None = None
    _ex: Exchange

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

    def _http_scheme(self) -> str:
        """The HTTP scheme, "http" or "https"; behind a trusted proxy, the one the client used."""
        if self._ex.noted_fields:
            return self._forwarded().scheme
        return self._ex.info.scheme

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

    #: The scheme, "http" or "https"; behind a trusted proxy, the one the client used.
    #: (The method itself as the getter: no second call per access.)
    scheme = property(_http_scheme)

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
        default = 443 if self._http_scheme() == "https" else 80
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
