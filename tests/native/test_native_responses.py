"""Native response classes as they arrive on the wire."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from blazeasgi import (
    App,
    EventSourceResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
    format_sse,
)

from ..conftest import MockConnection


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def raw_get(srv: Any, path: str) -> bytes:
    with srv.connect() as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return read_to_eof(sock)


def block(i: int) -> bytes:
    return hashlib.sha256(b"%d" % i).digest() * 512  # 16 KiB


STREAM_BLOCKS = 200  # ~3.2 MB


try:
    import orjson  # noqa: F401

    HAS_ORJSON = True
except ImportError:  # pragma: no cover
    HAS_ORJSON = False


def build_app(
    sse_gate: dict[str, asyncio.Event] | None = None, cleanup: threading.Event | None = None
) -> App:
    app = App()

    @app.get("/json-int-keys")
    def json_int_keys(request: Request) -> dict[Any, Any]:
        return {1: "one", "two": 2}

    @app.get("/json-big-int")
    def json_big_int(request: Request) -> Response:
        return JSONResponse({"n": 2**70})

    @app.get("/content-type-header")
    def content_type_header(request: Request) -> Response:
        return PlainTextResponse("a,b", headers={"Content-Type": "text/csv"})

    @app.get("/stream-forever")
    def stream_forever(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"tick\n" * 1000
                    await asyncio.sleep(0.005)
            finally:
                if cleanup is not None:
                    cleanup.set()

        return StreamingResponse(gen())

    @app.get("/plain")
    def plain(request: Request) -> Response:
        return Response(b"data", 201, {"x-one": "1", "X-Two": "2"}, "application/x-thing")

    @app.get("/str-content")
    def str_content(request: Request) -> Response:
        return Response("snowman ☃", media_type="text/plain")

    @app.get("/no-media-type")
    def no_media_type(request: Request) -> Response:
        return Response(b"bare")

    @app.get("/cookies")
    def cookies(request: Request) -> Response:
        return Response(
            b"ok",
            headers=[("set-cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; HttpOnly"), ("x-h", "v")],
            media_type="text/plain",
        )

    @app.get("/json")
    def json_response(request: Request) -> Response:
        return JSONResponse(
            {"greeting": "héllo wörld ☃ 日本", "nested": {"list": [1, 2.5, None, True], "empty": {}}},
            headers={"x-json": "yes"},
        )

    @app.get("/json-status")
    def json_status(request: Request) -> Response:
        return JSONResponse(["created"], status_code=201)

    @app.get("/text")
    def text(request: Request) -> Response:
        return PlainTextResponse("plain ☃")

    @app.get("/html")
    def html(request: Request) -> Response:
        return HTMLResponse("<h1>héllo</h1>")

    @app.get("/html-custom-charset")
    def html_custom_charset(request: Request) -> Response:
        return HTMLResponse("<p>x</p>", media_type="text/html; charset=latin-1")

    @app.get("/redirect")
    def redirect(request: Request) -> Response:
        return RedirectResponse("/plain")

    @app.get("/redirect-301")
    def redirect_301(request: Request) -> Response:
        return RedirectResponse("https://example.com/a b?x=1", status_code=301, headers={"x-r": "1"})

    @app.get("/custom-status")
    def custom_status(request: Request) -> Response:
        return PlainTextResponse("teapot", status_code=418)

    @app.get("/bad-header-value")
    def bad_header_value(request: Request) -> Response:
        return Response(b"body", headers={"x-bad": "a\r\nx-injected: 1"})

    @app.get("/bad-header-lf")
    async def bad_header_lf(request: Request) -> Response:
        return Response(b"body", headers=[("x-bad", "a\nx-injected: 1")])

    @app.get("/bad-header-name")
    def bad_header_name(request: Request) -> Response:
        return Response(b"body", headers={"x-bad\r\nx-injected": "1"})

    @app.get("/bad-header-stream")
    def bad_header_stream(request: Request) -> Response:
        return StreamingResponse(iter([b"a"]), headers={"x-bad": "v\r\n\r\nHTTP/1.1 200 OK"})

    @app.get("/stream-async")
    def stream_async(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(STREAM_BLOCKS):
                await asyncio.sleep(0)
                yield block(i)

        return StreamingResponse(gen(), media_type="application/octet-stream", headers={"x-s": "1"})

    @app.get("/stream-sync")
    async def stream_sync(request: Request) -> Response:
        def gen() -> Iterator[bytes]:
            for i in range(STREAM_BLOCKS):
                yield block(i)

        return StreamingResponse(gen(), media_type="application/octet-stream")

    @app.get("/stream-str")
    def stream_str(request: Request) -> Response:
        return StreamingResponse(["héllo ", "wörld", b" bytes", " ☃"], media_type="text/plain")

    @app.get("/stream-empty")
    def stream_empty(request: Request) -> Response:
        return StreamingResponse(iter(()))

    @app.get("/stream-status")
    def stream_status(request: Request) -> Response:
        return StreamingResponse(iter([b"x"]), status_code=202, headers=[("x-a", "1"), ("x-a", "2")])

    @app.get("/stream-fails")
    def stream_fails(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            yield b"first"
            raise RuntimeError("mid-stream failure")

        return StreamingResponse(gen())

    @app.get("/sse")
    def sse(request: Request) -> Response:
        async def events() -> AsyncIterator[Any]:
            yield format_sse("hello", event="greeting", id="1", retry=5000)
            if sse_gate is not None:
                await sse_gate["go"].wait()
            yield format_sse("line one\nline two", event="multi", id="2")
            yield {"json": [1, 2]}
            yield "plain string"

        return EventSourceResponse(events(), headers={"x-sse": "yes"})

    @app.get("/sse-sync")
    def sse_sync(request: Request) -> Response:
        return EventSourceResponse(iter(["a", format_sse("b", event="e")]))

    return app


@pytest.fixture
def client(serve: Any) -> Iterator[httpx.Client]:
    srv = serve(build_app())
    with httpx.Client(base_url=srv.url(""), timeout=20, follow_redirects=False) as c:
        yield c


# -- Response --------------------------------------------------------------------------


def test_response_fields(client: httpx.Client) -> None:
    r = client.get("/plain")
    assert r.status_code == 201
    assert r.content == b"data"
    assert r.headers["content-type"] == "application/x-thing"
    assert r.headers["x-one"] == "1"
    assert r.headers["x-two"] == "2"
    assert r.headers["content-length"] == "4"


def test_response_str_content_encoded_utf8(client: httpx.Client) -> None:
    r = client.get("/str-content")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.content == "snowman ☃".encode()


def test_response_without_media_type_has_no_content_type(client: httpx.Client) -> None:
    r = client.get("/no-media-type")
    assert r.content == b"bare"
    assert "content-type" not in r.headers


def test_headers_as_list_with_two_set_cookies(serve: Any) -> None:
    srv = serve(build_app())
    data = raw_get(srv, "/cookies")
    head = data.partition(b"\r\n\r\n")[0].lower()
    assert b"\r\nset-cookie: a=1; path=/\r\n" in head
    assert b"\r\nset-cookie: b=2; httponly\r\n" in head
    with httpx.Client(timeout=10) as c:
        r = c.get(srv.url("/cookies"))
        assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
        assert r.cookies["a"] == "1" and r.cookies["b"] == "2"
        assert r.headers["x-h"] == "v"


def test_json_response_unicode_nested(client: httpx.Client) -> None:
    r = client.get("/json")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-json"] == "yes"
    assert r.json() == {
        "greeting": "héllo wörld ☃ 日本",
        "nested": {"list": [1, 2.5, None, True], "empty": {}},
    }
    assert int(r.headers["content-length"]) == len(r.content)
    r = client.get("/json-status")
    assert r.status_code == 201
    assert r.json() == ["created"]


def test_plain_and_html_charset(client: httpx.Client) -> None:
    r = client.get("/text")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == "plain ☃"
    r = client.get("/html")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.text == "<h1>héllo</h1>"
    r = client.get("/html-custom-charset")
    assert r.headers["content-type"] == "text/html; charset=latin-1"


def test_redirect_default_307(client: httpx.Client) -> None:
    r = client.get("/redirect")
    assert r.status_code == 307
    assert r.headers["location"] == "/plain"
    assert r.content == b""
    followed = client.get("/redirect", follow_redirects=True)
    assert followed.status_code == 201
    assert followed.content == b"data"


def test_redirect_custom_status_quotes_location(client: httpx.Client) -> None:
    r = client.get("/redirect-301")
    assert r.status_code == 301
    assert r.headers["location"] == "https://example.com/a%20b?x=1"
    assert r.headers["x-r"] == "1"


def test_custom_status(client: httpx.Client) -> None:
    r = client.get("/custom-status")
    assert r.status_code == 418
    assert r.text == "teapot"


@pytest.mark.parametrize(
    "path", ["/bad-header-value", "/bad-header-lf", "/bad-header-name", "/bad-header-stream"]
)
def test_header_injection_gives_500_never_a_split_response(serve: Any, path: str) -> None:
    srv = serve(build_app())
    data = raw_get(srv, path)
    assert data.startswith(b"HTTP/1.1 500 ")
    assert data.count(b"HTTP/1.1") == 1
    assert b"x-injected" not in data.lower()
    assert b"x-bad" not in data.lower()
    assert data.partition(b"\r\n\r\n")[2] == b"Internal Server Error"
    # still serving
    with httpx.Client(timeout=10) as c:
        assert c.get(srv.url("/plain")).status_code == 201


def test_content_type_header_overrides_media_type(serve: Any) -> None:
    srv = serve(build_app())
    head = raw_get(srv, "/content-type-header").partition(b"\r\n\r\n")[0].lower()
    assert head.count(b"content-type:") == 1
    assert b"\r\ncontent-type: text/csv\r\n" in head + b"\r\n"


def test_json_int_keys_like_stdlib(client: httpx.Client) -> None:
    r = client.get("/json-int-keys")
    assert r.status_code == 200
    assert r.json() == {"1": "one", "two": 2}


def test_json_big_int_like_stdlib(client: httpx.Client) -> None:
    r = client.get("/json-big-int")
    assert r.status_code == 200
    assert r.json() == {"n": 2**70}


# -- StreamingResponse ------------------------------------------------------------------


def expected_stream() -> bytes:
    return b"".join(block(i) for i in range(STREAM_BLOCKS))


@pytest.mark.parametrize("path", ["/stream-async", "/stream-sync"])
def test_streaming_response_chunked_and_intact(client: httpx.Client, path: str) -> None:
    digest = hashlib.sha256()
    with client.stream("GET", path) as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in r.headers
        assert r.headers["content-type"] == "application/octet-stream"
        total = 0
        for piece in r.iter_raw():
            digest.update(piece)
            total += len(piece)
    expected = expected_stream()
    assert total == len(expected)
    assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()
    # connection reusable after a chunked response
    assert client.get("/plain").content == b"data"


def test_streaming_chunked_framing_on_the_wire(serve: Any) -> None:
    srv = serve(build_app())
    data = raw_get(srv, "/stream-str")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\ntransfer-encoding: chunked\r\n" in head.lower() + b"\r\n"
    assert body.endswith(b"0\r\n\r\n")
    # de-chunk by hand
    out = b""
    rest = body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]
    assert out == "héllo wörld bytes ☃".encode()


def test_streaming_str_chunks(client: httpx.Client) -> None:
    r = client.get("/stream-str")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == "héllo wörld bytes ☃"


def test_streaming_empty_and_status(client: httpx.Client) -> None:
    r = client.get("/stream-empty")
    assert r.status_code == 200
    assert r.content == b""
    r = client.get("/stream-status")
    assert r.status_code == 202
    assert r.content == b"x"
    assert r.headers.get_list("x-a") == ["1", "2"]


def test_streaming_head_has_no_body(serve: Any) -> None:
    srv = serve(build_app())
    with srv.connect() as sock:
        sock.sendall(b"HEAD /stream-str HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_to_eof(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b""


def test_streaming_failure_mid_body_truncates_not_completes(serve: Any) -> None:
    srv = serve(build_app())
    data = raw_get(srv, "/stream-fails")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"first" in body
    # the terminating zero-size chunk must not be sent: the client has to see
    # the body as incomplete
    assert not body.endswith(b"0\r\n\r\n")
    with httpx.Client(timeout=10) as c, pytest.raises(httpx.RemoteProtocolError):
        c.get(srv.url("/stream-fails"))


def test_streaming_generator_closed_when_client_disconnects(serve: Any) -> None:
    cleanup = threading.Event()
    srv = serve(build_app(cleanup=cleanup))
    with srv.connect() as sock:
        sock.sendall(b"GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"tick" not in data:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")
    assert cleanup.wait(10), "the generator's finally block never ran"
    with httpx.Client(timeout=10) as c:
        assert c.get(srv.url("/plain")).status_code == 201


def test_streaming_via_mock_connection(run: Any) -> None:
    async def go() -> bytes:
        conn = MockConnection(build_app(), date_header=False, server_header=False)
        conn.feed(b"GET /stream-str HTTP/1.1\r\nHost: x\r\n\r\n")
        return await conn.settle(50)

    out = run(go())
    assert out.startswith(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n")
    assert out.endswith(b"0\r\n\r\n")


# -- server-sent events -------------------------------------------------------------------


def test_format_sse_framing() -> None:
    assert format_sse("hi") == b"data: hi\n\n"
    assert format_sse("a\nb\nc", event="upd", id="7", retry=3000) == (
        b"event: upd\nid: 7\nretry: 3000\ndata: a\ndata: b\ndata: c\n\n"
    )
    assert format_sse({"k": [1, "ü"]}).startswith(b"data: {")
    assert format_sse("ünï") == "data: ünï\n\n".encode()


def spec_parse_sse(stream: str) -> list[dict[str, str]]:
    """The WHATWG event-stream parser: CR, LF and CRLF all end a line."""
    events = []
    event: dict[str, str] = {}
    data: list[str] = []
    for line in stream.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if data or event:
                if data:
                    event["data"] = "\n".join(data)
                events.append(event)
            event, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name in ("event", "id", "retry"):
            event[name] = value
    return events


def test_format_sse_roundtrips_through_spec_parser() -> None:
    text = format_sse("a\nb\r\nc", event="e", id="9", retry=10).decode()
    assert spec_parse_sse(text) == [{"event": "e", "id": "9", "retry": "10", "data": "a\nb\nc"}]


def test_format_sse_data_with_lone_cr() -> None:
    events = spec_parse_sse(format_sse("left\rright").decode())
    assert len(events) == 1
    assert events[0]["data"].replace("\n", "\r") == "left\rright"


def test_format_sse_event_and_id_cannot_inject_fields() -> None:
    try:
        frame = format_sse("real", event="x\ndata: injected", id="1\nretry: 1")
    except ValueError:
        return  # rejecting is fine too
    events = spec_parse_sse(frame.decode())
    assert len(events) == 1
    assert events[0]["data"] == "real"
    assert "retry" not in events[0]


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for frame in text.split("\n\n"):
        if not frame:
            continue
        event: dict[str, Any] = {"data": []}
        for line in frame.split("\n"):
            field, _, value = line.partition(": ")
            if field == "data":
                event["data"].append(value)
            else:
                event[field] = value
        event["data"] = "\n".join(event["data"])
        events.append(event)
    return events


def test_event_source_incremental(serve: Any) -> None:
    # asyncio.Event binds to a loop on first use (3.10+): made here, awaited there.
    gate = {"go": asyncio.Event()}
    srv = serve(build_app(gate))

    with httpx.Client(timeout=10) as c, c.stream("GET", srv.url("/sse")) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-sse"] == "yes"
        assert r.headers["transfer-encoding"] == "chunked"
        text = ""
        lines = r.iter_text()
        # The first event arrives while the generator is still blocked on the gate.
        while "\n\n" not in text:
            text += next(lines)
        first = parse_sse(text)
        assert first == [{"event": "greeting", "id": "1", "retry": "5000", "data": "hello"}]
        srv.loop.call_soon_threadsafe(gate["go"].set)
        for piece in lines:
            text += piece
    events = parse_sse(text)
    assert events[1] == {"event": "multi", "id": "2", "data": "line one\nline two"}
    assert events[2] == {"data": '{"json": [1, 2]}'}
    assert events[3] == {"data": "plain string"}
    assert len(events) == 4


def test_event_source_sync_iterator(client: httpx.Client) -> None:
    r = client.get("/sse-sync")
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert parse_sse(r.text) == [{"data": "a"}, {"event": "e", "data": "b"}]
