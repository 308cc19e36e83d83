"""Engine framing: keep-alive, pipelining, HTTP/1.0, Connection: close, body framing.

Also home of the small HTTP client helpers the other ``test_engine_*`` files import
(``parse_response``, ``Client``, ``pump``).
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from blazeasgi import App, Request, Response, StreamingResponse

from .conftest import MockConnection

# -- helpers shared by the test_engine_* files -------------------------------------------


@dataclass
class Resp:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw: bytes = b""
    chunked: bool = False

    def get(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]

    @property
    def closes(self) -> bool:
        value = self.get(b"connection")
        return value is not None and b"close" in value.lower()


def parse_response(data: bytes, method: str = "GET", eof: bool = False) -> tuple[Resp, int] | None:
    """One response from the start of ``data`` -> (response, bytes used), or None if
    it is incomplete. ``eof`` says the peer closed (ends a close-delimited body)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    assert version == b"HTTP/1.1", f"bad status line {lines[0]!r}"
    code, _, reason = rest.partition(b" ")
    status = int(code)
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        assert sep and name == name.strip(), f"bad header line {line!r}"
        headers.append((name.lower(), value.strip()))
    resp = Resp(status, reason, headers, b"")
    pos = end + 4
    te = resp.get(b"transfer-encoding")
    cl = resp.all(b"content-length")
    assert len(cl) <= 1, "several content-length headers"
    if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
        pass
    elif te is not None:
        assert te.lower() == b"chunked" and not cl, f"bad framing {headers!r}"
        resp.chunked = True
        parts = []
        while True:
            nl = data.find(b"\r\n", pos)
            if nl < 0:
                return None
            size = int(data[pos:nl].split(b";")[0], 16)
            pos = nl + 2
            if size == 0:
                if data[pos : pos + 2] != b"\r\n":
                    return None  # (no trailers are ever sent by the engine)
                pos += 2
                break
            if len(data) < pos + size + 2:
                return None
            parts.append(data[pos : pos + size])
            assert data[pos + size : pos + size + 2] == b"\r\n", "chunk not followed by CRLF"
            pos += size + 2
        resp.body = b"".join(parts)
    elif cl:
        n = int(cl[0])
        if len(data) < pos + n:
            return None
        resp.body = data[pos : pos + n]
        pos += n
    else:
        if not eof:
            return None
        resp.body = data[pos:]
        pos = len(data)
    resp.raw = data[:pos]
    return resp, pos


def parse_all(data: bytes, methods: list[str] | None = None, eof: bool = True) -> tuple[list[Resp], bytes]:
    """Every complete response in ``data`` (1xx included) and the unparsed rest."""
    methods = list(methods or [])
    out = []
    while data:
        status_peek = data[9:12]
        method = "GET"
        if not status_peek.startswith(b"1") and methods:
            method = methods[0]
        got = parse_response(data, method, eof)
        if got is None:
            break
        resp, used = got
        if resp.status >= 200 and methods:
            methods.pop(0)
        out.append(resp)
        data = data[used:]
    return out, data


class Client:
    """A raw-socket HTTP client that keeps unread bytes between responses."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def response(self, method: str = "GET", informational: bool = False) -> Resp:
        while True:
            got = parse_response(self.buf, method, self.eof)
            if got is not None:
                resp, used = got
                self.buf = self.buf[used:]
                if resp.status >= 200 or informational:
                    return resp
                continue
            if self.eof:
                raise AssertionError(f"connection closed mid-response: {self.buf!r}")
            self._fill()

    def is_closed(self, timeout: float = 3.0) -> bool:
        """True once the server closes (EOF or reset); fails on unexpected bytes."""
        self.sock.settimeout(timeout)
        try:
            while not self.eof:
                self._fill()
                assert not self.buf, f"unexpected bytes: {self.buf[:200]!r}"
        except TimeoutError:
            return False
        return True

    def read_until_close(self, timeout: float = 3.0) -> bytes:
        self.sock.settimeout(timeout)
        while not self.eof:
            self._fill()
        data, self.buf = self.buf, b""
        return data


async def pump(conn: MockConnection, until: Callable[[bytes], bool], timeout: float = 3.0) -> bytes:
    """Run the loop until what the connection wrote satisfies ``until``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out = b""
    while True:
        out += conn.transport.take()
        if until(out):
            return out
        if loop.time() > deadline:
            raise AssertionError(f"timed out; written so far: {out!r}")
        await asyncio.sleep(0.002)


def n_responses(n: int, methods: list[str] | None = None) -> Callable[[bytes], bool]:
    def check(data: bytes) -> bool:
        resps, _ = parse_all(data, methods, eof=False)
        return len([r for r in resps if r.status >= 200]) >= n

    return check


async def closed_soon(conn: MockConnection, timeout: float = 1.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not conn.transport.closed and loop.time() < deadline:
        await asyncio.sleep(0.002)
    await asyncio.sleep(0)
    return conn.transport.closed


def get(path: str = "/", extra: bytes = b"", version: bytes = b"1.1", method: bytes = b"GET") -> bytes:
    host = b"Host: x\r\n" if version == b"1.1" else b""
    return b"%s %s HTTP/%s\r\n%s%s\r\n" % (method, path.encode(), version, host, extra)


NO_DEFAULTS = {"date_header": False, "server_header": False}

# -- the app under test ----------------------------------------------------------------


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect each test's closed loops now, in this thread, once its servers have
    stopped (CPython 3.11's ast.parse, used when tracebacks are formatted, is not
    thread-safe: a collection in a server thread could race pytest's reporting)."""
    yield
    gc.collect()


app = App()
seen: list[str] = []


@app.get("/")
def index(request: Request) -> Response:
    return Response(b"hi", media_type="text/plain")


@app.get("/sync/{name}")
def sync_named(request: Request) -> Response:
    seen.append(request.path)
    return Response(f"sync {request.path_params['name']}".encode(), media_type="text/plain")


@app.get("/async/{name}")
async def async_named(request: Request) -> Response:
    seen.append(request.path)
    await asyncio.sleep(0.01)
    return Response(f"async {request.path_params['name']}".encode(), media_type="text/plain")


@app.get("/stream")
def stream(request: Request) -> StreamingResponse:
    return StreamingResponse([b"ab", b"", b"cde"], media_type="text/plain")


@app.get("/astream")
async def astream(request: Request) -> StreamingResponse:
    async def gen() -> Any:
        yield b"one"
        await asyncio.sleep(0.005)
        yield "two"

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/close")
def app_close(request: Request) -> Response:
    return Response(b"bye", headers={"Connection": "close"}, media_type="text/plain")


@app.get("/stream-close")
def stream_close(request: Request) -> StreamingResponse:
    return StreamingResponse([b"x"], headers={"connection": "close"})


@app.get("/empty")
def empty(request: Request) -> Response:
    return Response(b"", 204)


@app.get("/empty-with-body")
def empty_with_body(request: Request) -> Response:
    # An app mistake: a 204 must never carry a body on the wire.
    return Response(b"oops", 204)


@app.get("/not-modified")
def not_modified(request: Request) -> Response:
    return Response(b"", 304, headers={"etag": '"v1"'})


@app.get("/stream-204")
def stream_204(request: Request) -> StreamingResponse:
    return StreamingResponse([b"oops"], status_code=204)


@app.get("/stream-304")
def stream_304(request: Request) -> StreamingResponse:
    return StreamingResponse([b"oops"], status_code=304)


@app.get("/sized-stream")
def sized_stream(request: Request) -> StreamingResponse:
    return StreamingResponse([b"abc", b"de"], headers={"content-length": "5"})


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/one":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": b"hello"})
    elif path == "/parts":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"c", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/parts-sized":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"c"})
    elif path == "/close":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"bye"})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


HI = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain; charset=utf-8\r\n\r\nhi"


# -- keep-alive and pipelining -----------------------------------------------------------


def test_keep_alive_two_requests_on_one_socket(serve) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        client = Client(sock)
        for _ in range(2):
            client.send(get("/"))
            resp = client.response()
            assert (resp.status, resp.body) == (200, b"hi")
            assert not resp.closes
        client.send(get("/sync/again"))
        assert client.response().body == b"sync again"


def test_keep_alive_exact_bytes(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/"))
        first = await conn.settle()
        conn.feed(get("/"))
        return first + await conn.settle(), conn.transport.closed

    out, closed = run(go())
    assert out == HI + HI
    assert not closed


def test_pipelining_mixed_sync_async_answered_in_order(run) -> None:
    paths = ["/async/a", "/sync/b", "/async/c", "/sync/d", "/sync/e", "/async/f"]

    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"".join(get(p) for p in paths))
        return await pump(conn, n_responses(len(paths)))

    seen.clear()
    out = run(go())
    resps, rest = parse_all(out)
    assert rest == b""
    assert [r.body for r in resps] == [b"async a", b"sync b", b"async c", b"sync d", b"sync e", b"async f"]
    assert all(r.status == 200 and not r.closes for r in resps)
    # handlers also ran strictly one after the other, in request order
    assert seen == paths


def test_pipelining_split_across_reads(run) -> None:
    data = b"".join(get(p) for p in ["/sync/1", "/async/2", "/sync/3"])

    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        for i in range(0, len(data), 7):
            conn.feed(data[i : i + 7])
            await asyncio.sleep(0)
        return await pump(conn, n_responses(3))

    resps, rest = parse_all(run(go()))
    assert [r.body for r in resps] == [b"sync 1", b"async 2", b"sync 3"]
    assert rest == b""


def test_pipelining_over_socket(serve) -> None:
    srv = serve(app)
    paths = ["/async/x", "/sync/y", "/stream", "/async/z", "/"]
    with srv.connect() as sock:
        client = Client(sock)
        client.send(b"".join(get(p) for p in paths))
        bodies = [client.response().body for _ in paths]
    assert bodies == [b"async x", b"sync y", b"abcde", b"async z", b"hi"]


# -- HTTP/1.0 --------------------------------------------------------------------------


def test_http10_closes_by_default(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/", version=b"1.0") + get("/sync/never", version=b"1.0"))
        out = await conn.settle()
        return out, await closed_soon(conn)

    out, closed = run(go())
    assert out == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\n\r\nhi"
    )
    assert closed


def test_http10_keep_alive_requested(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/", b"Connection: keep-alive\r\n", version=b"1.0"))
        out = await conn.settle()
        conn.feed(get("/sync/2", b"Connection: keep-alive\r\n", version=b"1.0"))
        out += await conn.settle()
        return out, conn.transport.closed

    out, closed = run(go())
    resps, rest = parse_all(out)
    assert rest == b""
    assert [r.body for r in resps] == [b"hi", b"sync 2"]
    assert [r.get(b"connection") for r in resps] == [b"keep-alive", b"keep-alive"]
    assert not closed


def test_http10_over_socket_closes(serve) -> None:
    srv = serve(app)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(get("/", version=b"1.0"))
        resp = client.response()
        assert (resp.status, resp.body) == (200, b"hi")
        assert client.is_closed()


def test_http10_streamed_body_is_close_delimited(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/stream", b"Connection: keep-alive\r\n", version=b"1.0"))
        out = await conn.settle()
        return out, await closed_soon(conn)

    out, closed = run(go())
    assert out == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n\r\nabcde"
    )
    assert closed


# -- Connection: close -------------------------------------------------------------------


def test_client_connection_close(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/sync/first", b"Connection: close\r\n") + get("/sync/second"))
        out = await conn.settle()
        closed = await closed_soon(conn)
        conn.feed(get("/sync/third"))  # anything later is ignored too
        return out + await conn.settle(), closed

    seen.clear()
    out, closed = run(go())
    assert out == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\n\r\nsync first"
    )
    assert closed
    assert seen == ["/sync/first"]


def test_client_connection_close_async_handler(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/async/first", b"Connection: close\r\n") + get("/sync/second"))
        out = await pump(conn, n_responses(1))
        return out + await conn.settle(), await closed_soon(conn)

    seen.clear()
    out, closed = run(go())
    resps, rest = parse_all(out)
    assert [r.body for r in resps] == [b"async first"] and rest == b""
    assert resps[0].closes
    assert closed
    assert seen == ["/async/first"]


def test_client_connection_close_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(get("/", b"Connection: close\r\n") + get("/sync/no"))
        resp = client.response()
        assert resp.body == b"hi" and resp.closes
        assert client.is_closed()


@pytest.mark.parametrize("path", ["/close", "/stream-close"])
def test_app_connection_close_header_closes(run, path: str) -> None:
    async def go() -> tuple[bytes, bool, bytes]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get(path))
        out = await pump(conn, n_responses(1))
        closed = await closed_soon(conn)
        conn.feed(get("/sync/after"))
        return out, closed, await conn.settle()

    seen.clear()
    out, closed, later = run(go())
    resps, rest = parse_all(out)
    assert len(resps) == 1 and rest == b""
    assert resps[0].all(b"connection") == [b"close"]
    assert closed
    assert later == b""
    assert seen == []


def test_asgi_connection_close_header_closes(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(asgi_app, **NO_DEFAULTS)
        conn.feed(get("/close"))
        out = await pump(conn, n_responses(1))
        return out + await conn.settle(), await closed_soon(conn)

    out, closed = run(go())
    assert out == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nbye"
    assert closed


def test_app_connection_close_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(get("/close"))
        resp = client.response()
        assert resp.body == b"bye" and resp.closes
        assert client.is_closed()


def test_pipelined_requests_before_client_close_are_all_answered(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/") + get("/", b"Connection: close\r\n"))
        out = await conn.settle()
        return out, await closed_soon(conn)

    out, closed = run(go())
    assert out == HI + (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\n\r\nhi"
    )
    assert closed


def test_pipelined_requests_before_client_close_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(get("/") + get("/sync/last", b"Connection: close\r\n"))
        assert client.response().body == b"hi"
        last = client.response()
        assert last.body == b"sync last" and last.closes
        assert client.is_closed()


@pytest.mark.parametrize("path", ["/close", "/stream-close"])
def test_app_connection_close_in_pipeline(run, path: str) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/") + get(path) + get("/sync/after"))
        out = await conn.settle()
        return out, await closed_soon(conn)

    seen.clear()
    out, closed = run(go())
    resps, rest = parse_all(out)
    assert rest == b""
    assert [r.status for r in resps] == [200, 200]
    assert resps[0].body == b"hi" and resps[1].closes
    assert closed
    assert seen == []


# -- body framing --------------------------------------------------------------------------


def test_known_body_has_content_length(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(asgi_app, **NO_DEFAULTS)
        conn.feed(get("/one") + get("/parts-sized"))
        return await pump(conn, n_responses(2))

    assert run(go()) == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello"
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"
    )


def test_streamed_body_is_chunked_on_http11(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/stream") + get("/astream") + get("/"))
        return await pump(conn, n_responses(3))

    out = run(go())
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain; charset=utf-8\r\n\r\n"
    assert out == (
        head + b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n" + head + b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n" + HI
    )


def test_asgi_streamed_body_is_chunked(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(asgi_app, **NO_DEFAULTS)
        conn.feed(get("/parts") + get("/one"))
        return await pump(conn, n_responses(2))

    out = run(go())
    assert out == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello"
    )


def test_streamed_body_with_declared_length_is_not_chunked(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/sized-stream") + get("/"))
        return await pump(conn, n_responses(2))

    assert run(go()) == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabcde" + HI


def test_streamed_response_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        client = Client(sock)
        client.send(get("/astream"))
        resp = client.response()
        assert resp.chunked and resp.body == b"onetwo"
        client.send(get("/"))
        assert client.response().body == b"hi"


def test_head_has_no_body_but_keeps_content_length(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/", method=b"HEAD") + get("/sized-stream", method=b"HEAD") + get("/"))
        return await pump(conn, lambda d: d.endswith(b"hi"))

    out = run(go())
    assert out == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain; charset=utf-8\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n" + HI
    )


def test_head_of_streamed_response_sends_no_chunks(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/stream", method=b"HEAD") + get("/"))
        return await pump(conn, lambda d: d.endswith(b"hi"))

    out = run(go())
    head, sep, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and sep
    assert b"\r\ncontent-type: text/plain; charset=utf-8" in head
    assert rest == HI  # no body bytes, not even a last chunk


def test_head_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        client = Client(sock)
        client.send(get("/", method=b"HEAD") + get("/"))
        head = client.response("HEAD")
        assert head.get(b"content-length") == b"2" and head.body == b""
        assert client.response().body == b"hi"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/empty", 204),
        ("/empty-with-body", 204),
        ("/not-modified", 304),
        ("/stream-204", 204),
        ("/stream-304", 304),
    ],
)
def test_no_body_statuses(run, path: str, status: int) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get(path) + get("/"))
        return await pump(conn, lambda d: d.endswith(b"hi"))

    out = run(go())
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    lower = head.lower()
    assert b"transfer-encoding" not in lower
    assert b"content-length" not in lower
    assert rest == HI


def test_date_and_server_headers_by_default(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app)
        conn.feed(get("/") + get("/stream"))
        return await pump(conn, n_responses(2))

    resps, _ = parse_all(run(go()))
    for resp in resps:
        assert resp.get(b"server") == b"blazeasgi"
        date = resp.get(b"date")
        assert date is not None and date.endswith(b" GMT")


@pytest.mark.parametrize(
    ("config", "present"),
    [
        ({"date_header": False}, [b"server"]),
        ({"server_header": False}, [b"date"]),
        ({"date_header": False, "server_header": False}, []),
    ],
)
def test_date_and_server_headers_can_be_disabled(run, config: dict[str, bool], present: list[bytes]) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **config)
        conn.feed(get("/") + get("/stream"))
        return await pump(conn, n_responses(2))

    resps, _ = parse_all(run(go()))
    assert len(resps) == 2
    for resp in resps:
        names = {k for k, _ in resp.headers} & {b"date", b"server"}
        assert names == set(present)


def test_date_and_server_headers_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        client = Client(sock)
        client.send(get("/"))
        resp = client.response()
    assert resp.get(b"server") == b"blazeasgi"
    assert resp.get(b"date") is not None

    srv2 = serve(app, date_header=False, server_header=False)
    with srv2.connect() as sock:
        client = Client(sock)
        client.send(get("/"))
        resp = client.response()
    assert resp.get(b"server") is None and resp.get(b"date") is None


def test_many_pipelined_requests_answered_in_order(run) -> None:
    """More than the pipeline's high-water mark in one packet: reading pauses,
    then every request is answered, in order."""
    names = [str(i) for i in range(150)]

    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        data = b"".join(get(f"/{'async' if i % 10 == 0 else 'sync'}/{n}") for i, n in enumerate(names))
        conn.feed(data)
        out = await pump(conn, n_responses(len(names)))
        return out, conn.transport.reading

    out, reading = run(go())
    resps, rest = parse_all(out)
    assert rest == b""
    assert [r.body.split()[1] for r in resps] == [n.encode() for n in names]
    assert reading  # resumed once the queue drained


def test_many_pipelined_requests_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        client = Client(sock)
        client.send(b"".join(get(f"/sync/{i}") for i in range(300)))
        bodies = [client.response().body for _ in range(300)]
        assert bodies == [b"sync %d" % i for i in range(300)]
        client.send(get("/"))
        assert client.response().body == b"hi"


@pytest.mark.parametrize(
    "request_bytes",
    [
        get("/", b"Connection: Upgrade\r\nUpgrade: websocket\r\n"),
        b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["upgrade", "connect"],
)
def test_upgrade_request_answered_as_plain_http_announces_close(run, request_bytes: bytes) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(request_bytes)
        out = await pump(conn, n_responses(1))
        return out, await closed_soon(conn)

    out, closed = run(go())
    resps, _ = parse_all(out)
    assert resps[0].status in (200, 404)
    assert closed
    assert resps[0].closes
