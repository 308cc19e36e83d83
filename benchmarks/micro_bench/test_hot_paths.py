"""Hot-path micro-benchmarks: request parsing, routing, response serialisation, ASGI scope."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httptools
import pytest

from benchmarks.apps import hello_asgi, hello_native
from benchmarks.apps.common import HELLO, MESSAGE, SECURITY_HEADERS
from blazeasgi import App, JSONResponse, Request, Response
from blazeasgi.asgi.adapter import ASGIAdapter
from blazeasgi.engine import http11
from blazeasgi.engine.exchange import Exchange
from blazeasgi.native.routing import Router
from blazeasgi.settings import InterfaceSettings

from .conftest import REQUEST

Connect = Callable[[Any], tuple[Any, Any]]

# -- request parsing --------------------------------------------------------------------------------


class _Sink:
    """The least a parser protocol can do: the floor under any server's parsing."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.done = 0

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        self.done += 1
        self.headers = []


def test_parse_httptools_floor(benchmark: Any) -> None:
    sink = _Sink()
    parser = httptools.HttpRequestParser(sink)
    benchmark(parser.feed_data, REQUEST)
    assert sink.done > 0 and sink.url == b"/"


def test_engine_request_native(benchmark: Any, connection: Connect) -> None:
    """Parse + route + handler + serialise + write for the native hello world."""
    conn, transport = connection(hello_native.app)
    before = transport.writes
    benchmark(conn.data_received, REQUEST)
    assert transport.writes > before


def test_engine_request_asgi(benchmark: Any, connection: Connect) -> None:
    """The same request through the ASGI adapter and the raw ASGI app."""
    conn, transport = connection(hello_asgi.app)
    before = transport.writes
    benchmark(conn.data_received, REQUEST)
    assert transport.writes > before


def test_engine_request_pipelined_16(benchmark: Any, connection: Connect) -> None:
    """16 pipelined requests in one read (divide by 16 for the per-request figure)."""
    conn, transport = connection(hello_native.app)
    before = transport.bytes
    benchmark(conn.data_received, REQUEST * 16)
    assert transport.bytes > before


def test_engine_request_with_headers(benchmark: Any, connection: Connect) -> None:
    """A browser-like request head (12 headers): header handling cost."""
    conn, transport = connection(hello_native.app)
    request = (
        b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
        b"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-GB,en;q=0.9\r\n"
        b"Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n"
        b"Cookie: session=abcdef0123456789\r\n"
        b"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n"
        b"Sec-Fetch-Site: none\r\nCache-Control: max-age=0\r\n\r\n"
    )
    before = transport.writes
    benchmark(conn.data_received, request)
    assert transport.writes > before


# -- routing ----------------------------------------------------------------------------------------


def _router() -> Router:
    router = Router()
    for i in range(20):
        router.add(f"/static/{i}", ["GET"], lambda request: None)
        router.add(f"/users/{i}/{{name}}", ["GET"], lambda request: None)
    router.add("/items/{item_id:int}", ["GET", "POST"], lambda request: None)
    return router


def test_route_static_hit(benchmark: Any) -> None:
    router = _router()
    endpoint, _, _ = benchmark(router.resolve, "/static/19", "GET")
    assert endpoint is not None


def test_route_dynamic_hit(benchmark: Any) -> None:
    router = _router()
    endpoint, params, _ = benchmark(router.resolve, "/items/42", "GET")
    assert endpoint is not None and params == {"item_id": "42"}


def test_route_miss(benchmark: Any) -> None:
    router = _router()
    endpoint, _, partial = benchmark(router.resolve, "/nowhere/at/all", "GET")
    assert endpoint is None and partial is None


# -- response serialisation ---------------------------------------------------------------------------

ASGI_HEADERS = hello_asgi.HEADERS


def test_build_head_cold(benchmark: Any) -> None:
    head = benchmark(http11.build_head, ASGI_HEADERS)
    assert head.content_length == 13


def test_head_cache_hit(benchmark: Any) -> None:
    cache = http11.HeadCache()
    cache.get(ASGI_HEADERS)
    head = benchmark(cache.get, ASGI_HEADERS)
    assert head.content_length == 13


def test_native_response_with_security_headers(benchmark: Any) -> None:
    def make() -> Response:
        return Response(HELLO, headers=SECURITY_HEADERS, media_type="text/plain")

    response = benchmark(make)
    assert response.body == HELLO


def test_json_response(benchmark: Any) -> None:
    response = benchmark(JSONResponse, MESSAGE)
    assert response.body.replace(b" ", b"") == b'{"message":"Hello,World!"}'


def test_date_server_block(benchmark: Any) -> None:
    block = benchmark(http11.default_headers, True, True)
    assert block.startswith(b"server: ")


def test_encode_chunk_64k(benchmark: Any) -> None:
    chunk = benchmark(http11.encode_chunk, b"x" * 65536)
    assert chunk.startswith(b"10000\r\n")


# -- ASGI scope construction --------------------------------------------------------------------------


async def _noop_app(scope: Any, receive: Any, send: Any) -> None:
    pass


def test_asgi_scope_construction(
    benchmark: Any, connection: Connect, loop: asyncio.AbstractEventLoop
) -> None:
    """ASGIAdapter.dispatch: scope dict, receive/send callables, the app's coroutine (closed
    unstarted, so only the construction is measured)."""
    captured: list[Exchange] = []
    app = App()

    @app.get("/")
    def grab(request: Request) -> Response:
        captured.append(request.exchange)
        return Response(b"ok")

    connection(app)
    ex = captured[-1]
    adapter = ASGIAdapter(_noop_app, InterfaceSettings(lifespan="off"))

    def build() -> None:
        coro = adapter.dispatch(ex)
        coro.close()

    benchmark(build)


@pytest.mark.parametrize("path", ["/", "/json"])
def test_native_dispatch_through_app(benchmark: Any, connection: Connect, path: str) -> None:
    """The native App's dispatch for a static route, via the engine."""
    conn, transport = connection(hello_native.app)
    request = REQUEST.replace(b"GET / ", f"GET {path} ".encode())
    before = transport.writes
    benchmark(conn.data_received, request)
    assert transport.writes > before
