"""Engine framing: keep-alive, pipelining, HTTP/1.0, Connection: close, body framing.

The raw HTTP client helpers the engine tests share are in tests/helpers/http.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from blazeasgi import App, Request, Response, StreamingResponse

from ..conftest import MockConnection
from ..helpers.http import HI, NO_DEFAULTS, Client, closed_soon, get, n_responses, parse_all, pump

# -- the app under test ----------------------------------------------------------------


#: Closed loops collected after each test, in this thread (conftest.collect_garbage).
pytestmark = pytest.mark.usefixtures("collect_garbage")


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
