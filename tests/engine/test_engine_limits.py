"""Engine parse errors and limits: exact status, ``connection: close``, socket closed,
and the app never sees the broken request."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest

from blazeasgi import App, Request, Response
from blazeasgi.engine.transports import LINGER_SECONDS

from ..conftest import MockConnection
from ..helpers.http import (
    HI,
    NO_DEFAULTS,
    Client,
    Resp,
    closed_soon,
    get,
    n_responses,
    parse_all,
    pump,
    wait_for,
)

#: Closed loops collected after each test, in this thread (conftest.collect_garbage).
pytestmark = pytest.mark.usefixtures("collect_garbage")


app = App()
calls: list[str] = []


@app.route("/", ["GET", "POST", "PUT", "DELETE", "OPTIONS"])
def index(request: Request) -> Response:
    calls.append(f"{request.method} {request.path}")
    return Response(b"hi", media_type="text/plain")


@app.route("/{rest:path}", ["GET", "POST"])
def anything(request: Request) -> Response:
    calls.append(f"{request.method} {request.path}")
    return Response(f"path={request.path} query={request.query_string.decode()}".encode())


@app.post("/read")
async def read(request: Request) -> Response:
    calls.append("read")
    body = await request.body()
    return Response(str(len(body)).encode())


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    calls.append(scope["path"])
    body = f"{scope['path']}|{scope['raw_path'].decode()}|{scope['query_string'].decode()}"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


def post_head(path: str, extra: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), extra)


def assert_error(out: bytes, status: int) -> Resp:
    resps, rest = parse_all(out)
    assert len(resps) == 1, out
    assert rest == b""
    resp = resps[0]
    assert resp.status == status, out
    assert resp.all(b"connection") == [b"close"]
    assert resp.get(b"content-length") == str(len(resp.body)).encode()
    assert resp.get(b"content-type") == b"text/plain; charset=utf-8"
    return resp


async def feed_and_close(conn: MockConnection, data: bytes) -> tuple[bytes, bool]:
    conn.feed(data)
    out = await conn.settle()
    closed = await closed_soon(conn)
    # nothing more is ever parsed or answered on this connection
    conn.feed(get("/late"))
    return out + await conn.settle(), closed


LIMITS = {
    "max_target_size": 64,
    "max_head_size": 1024,
    "max_header_count": 10,
    "max_body_size": 100,
}

ERROR_CASES: list[tuple[str, bytes, int]] = [
    ("garbage", b"hello\r\n\r\n", 400),
    ("binary", b"\x00\x01\x02\x03\r\n\r\n", 400),
    ("garbage-request-line", b"GET\r\nHost: x\r\n\r\n", 400),
    ("invalid-method", b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("lowercase-method", b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("no-version", b"GET / FOO/1.1\r\nHost: x\r\n\r\n", 400),
    ("http-2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("http-1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    ("missing-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    ("two-hosts-http10", b"GET / HTTP/1.0\r\nHost: x\r\nHost: x\r\n\r\n", 400),
    ("cl-underscore", post_head("/", b"Content-Length: 1_0\r\n") + b"0123456789", 400),
    ("cl-negative", post_head("/", b"Content-Length: -1\r\n") + b"0123456789", 400),
    ("cl-plus", post_head("/", b"Content-Length: +5\r\n") + b"01234", 400),
    ("cl-hex", post_head("/", b"Content-Length: 0x5\r\n") + b"01234", 400),
    ("cl-list", post_head("/", b"Content-Length: 5, 6\r\n") + b"012345", 400),
    ("cl-conflict", post_head("/", b"Content-Length: 5\r\nContent-Length: 6\r\n") + b"012345", 400),
    ("cl-and-te", post_head("/", b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + b"0\r\n\r\n", 400),
    ("te-and-cl", post_head("/", b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + b"0\r\n\r\n", 400),
    ("te-gzip", post_head("/", b"Transfer-Encoding: gzip\r\n") + b"abc", 400),
    ("te-chunked-gzip", post_head("/", b"Transfer-Encoding: chunked, gzip\r\n"), 400),
    ("te-gzip-chunked", post_head("/", b"Transfer-Encoding: gzip, chunked\r\n") + b"0\r\n\r\n", 501),
    ("bad-chunk-size", post_head("/read", b"Transfer-Encoding: chunked\r\n") + b"zz\r\nab\r\n0\r\n\r\n", 400),
    ("target-too-long", b"GET /" + b"a" * 64 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("head-too-large", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 1100 + b"\r\n\r\n", 431),
    (
        "too-many-headers",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10)) + b"\r\n",
        431,
    ),
    ("body-too-large-cl", post_head("/", b"Content-Length: 101\r\n"), 413),
    (
        "body-too-large-chunked",
        post_head("/read", b"Transfer-Encoding: chunked\r\n")
        + b"3c\r\n"
        + b"a" * 60
        + b"\r\n3c\r\n"
        + b"b" * 60
        + b"\r\n",
        413,
    ),
    ("expect-other", post_head("/", b"Expect: something-else\r\nContent-Length: 2\r\n") + b"ab", 417),
    ("relative-target", b"GET a/b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
]


@pytest.mark.parametrize(("data", "status"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_parse_error(run, data: bytes, status: int) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **LIMITS, **NO_DEFAULTS)
        return await feed_and_close(conn, data)

    calls.clear()
    out, closed = run(go())
    assert_error(out, status)
    assert closed
    assert calls == []


@pytest.mark.parametrize(("data", "status"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_parse_error_byte_by_byte(run, data: bytes, status: int) -> None:
    """The same verdict when the request trickles in one byte at a time."""

    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **LIMITS, **NO_DEFAULTS)
        out = b""
        for i in range(len(data)):
            conn.feed(data[i : i + 1])
            if i % 16 == 0:
                out += await conn.settle(2)
        return out + await conn.settle(), await closed_soon(conn)

    calls.clear()
    out, closed = run(go())
    assert_error(out, status)
    assert closed
    # a handler may have started on a complete head; never on a broken one
    assert all(c == "read" for c in calls)


def test_error_message_is_exact(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
        return await conn.settle()

    assert run(go()) == (
        b"HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 27\r\nconnection: close\r\n\r\nHTTP Version Not Supported\n"
    )


BOUNDARY_OK: list[tuple[str, bytes]] = [
    ("target-at-limit", b"GET /" + b"a" * 63 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("head-under-limit", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 900 + b"\r\n\r\n"),
    (
        "headers-at-limit",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(9)) + b"\r\n",
    ),
    ("body-at-limit-cl", post_head("/read", b"Content-Length: 100\r\n") + b"x" * 100),
    (
        "body-at-limit-chunked",
        post_head("/read", b"Transfer-Encoding: chunked\r\n")
        + b"32\r\n"
        + b"a" * 50
        + b"\r\n32\r\n"
        + b"b" * 50
        + b"\r\n0\r\n\r\n",
    ),
    ("http10-without-host", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    ("expect-any-case", post_head("/read", b"Expect: 100-Continue\r\nContent-Length: 2\r\n") + b"ab"),
]


@pytest.mark.parametrize("data", [c[1] for c in BOUNDARY_OK], ids=[c[0] for c in BOUNDARY_OK])
def test_at_the_limit_is_accepted(run, data: bytes) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **LIMITS, **NO_DEFAULTS)
        conn.feed(data + get("/"))
        out = await pump(conn, n_responses(2))
        return out, conn.transport.closed

    out, closed = run(go())
    resps, rest = parse_all(out, eof=False)
    assert [r.status for r in resps] == [200, 200], out
    assert resps[1].raw == HI
    assert rest == b"" and not closed


def test_earlier_pipelined_requests_are_answered_before_the_error(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/") + get("/") + b"BROKEN\r\n\r\n")
        out = await pump(conn, lambda d: len(parse_all(d)[0]) == 3)
        return out, await closed_soon(conn)

    out, closed = run(go())
    resps, rest = parse_all(out)
    assert [r.status for r in resps] == [200, 200, 400] and rest == b""
    assert resps[0].raw == HI and resps[1].raw == HI
    assert resps[2].closes
    assert closed


def test_error_after_async_handler_is_sent_once_it_finishes(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(post_head("/read", b"Content-Length: 3\r\n"))
        await conn.settle()
        conn.feed(b"abc" + b"GET / HTTP/9.9\r\nHost: x\r\n\r\n")
        out = await pump(conn, lambda d: len(parse_all(d)[0]) == 2)
        return out, await closed_soon(conn)

    out, closed = run(go())
    resps, _ = parse_all(out)
    assert [(r.status, r.body) for r in resps[:1]] == [(200, b"3")]
    assert resps[1].status == 505 and resps[1].closes
    assert closed


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"3c\r\n" + b"a" * 60 + b"\r\n3c\r\n" + b"b" * 60 + b"\r\n", 413),
        (b"3\r\nabc\r\nzz\r\n", 400),
        (b"3\r\nabcX\r\n", 400),
    ],
    ids=["too-large", "bad-size", "bad-chunk-end"],
)
def test_body_error_while_handler_reads(run, caplog, body: bytes, status: int) -> None:
    """A handler waiting for a body that turns out broken: the client gets the
    protocol error (not a 500) and nothing is logged as an app failure."""

    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, max_body_size=100, **NO_DEFAULTS)
        conn.feed(post_head("/read", b"Transfer-Encoding: chunked\r\n"))
        await conn.settle()
        for i in range(0, len(body), 7):
            conn.feed(body[i : i + 7])
            await asyncio.sleep(0)
        out = await pump(conn, n_responses(1))
        return out + await conn.settle(), await closed_soon(conn)

    with caplog.at_level(logging.ERROR, logger="blazeasgi.error"):
        out, closed = run(go())
    assert_error(out, status)
    assert closed
    assert not [r for r in caplog.records if r.name.startswith("blazeasgi") and r.levelno >= logging.ERROR]


def test_content_length_over_limit_answered_without_reading_body(serve) -> None:
    srv = serve(app, max_body_size=100)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(post_head("/read", b"Content-Length: 1000000\r\n"))
        resp = client.response()  # no body byte was sent
        assert resp.status == 413 and resp.closes
        assert client.is_closed()


def test_chunked_body_over_limit_over_socket(serve) -> None:
    srv = serve(app, max_body_size=1000)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(post_head("/read", b"Transfer-Encoding: chunked\r\n"))
        client.send(b"400\r\n" + b"x" * 1024 + b"\r\n")
        resp = client.response()
        assert resp.status == 413 and resp.closes
        assert client.is_closed()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"hello\r\n\r\n", 400),
        (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 2000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (post_head("/", b"Transfer-Encoding: gzip, chunked\r\n"), 501),
        (post_head("/", b"Expect: nope\r\n"), 417),
    ],
    ids=["400", "505", "no-host", "431", "414", "501", "417"],
)
def test_parse_error_over_socket(serve, data: bytes, status: int) -> None:
    srv = serve(app, max_head_size=1024, max_target_size=100)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(data)
        resp = client.response()
        assert resp.status == status and resp.closes
        assert client.is_closed()


def test_error_close_reads_on_until_the_client_stops_sending(serve) -> None:
    """After an error that closes, the client may still be sending (the rest of a
    malformed request). The server half-closes and drops what comes, so those bytes
    meet no reset, which could discard the error unread (RFC 9112 §9.6). It closes
    at the client's FIN."""
    srv = serve(app, max_body_size=100)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(post_head("/read", b"Content-Length: 1000000\r\n"))
        resp = client.response()
        assert resp.status == 413 and resp.closes
        assert client.is_closed()  # the server's FIN
        for _ in range(3):  # a closed socket would answer the first with a reset
            sock.sendall(b"x" * 10_000)
            time.sleep(0.1)
        assert len(srv.state.connections) == 1  # still reading, until the client is done
        sock.shutdown(socket.SHUT_WR)
        assert wait_for(lambda: not srv.state.connections, timeout=2)


def test_error_close_ends_without_the_clients_fin(serve) -> None:
    """A client that neither stops sending nor closes is cut off after
    LINGER_SECONDS; the connection is not held open by it."""
    srv = serve(app)
    with srv.connect(timeout=3) as sock:
        sock.sendall(b"hello\r\n\r\n")
        assert Client(sock).response().status == 400
        assert wait_for(lambda: not srv.state.connections, timeout=LINGER_SECONDS + 1.5)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"http://x/a?b", "GET /a b"),
        (b"http://example.com:8080/a/b", "GET /a/b "),
        (b"HTTPS://x/a?b=1&c", "GET /a b=1&c"),
        (b"http://x?b", "GET / b"),
        (b"http://x", "GET / "),
    ],
)
def test_absolute_form_target(run, target: bytes, expected: str) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
        return await pump(conn, n_responses(1))

    calls.clear()
    resps, _ = parse_all(run(go()))
    assert resps[0].status == 200
    method_path, _, query = expected.partition(" ")[2].partition(" ")
    assert calls == [f"GET {method_path}"]
    if method_path != "/":
        assert resps[0].body == f"path={method_path} query={query}".encode()


def test_absolute_form_target_asgi(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(asgi_app, **NO_DEFAULTS)
        conn.feed(b"GET http://x/a?b HTTP/1.1\r\nHost: x\r\n\r\n")
        return await pump(conn, n_responses(1))

    resps, _ = parse_all(run(go()))
    assert resps[0].body == b"/a|/a|b"


def test_absolute_form_target_over_socket(serve) -> None:
    srv = serve(asgi_app)
    with srv.connect() as sock:
        client = Client(sock)
        client.send(b"GET http://x/a%20b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.response().body == b"/a b|/a%20b|q=1"


@pytest.mark.parametrize(
    "request_line",
    [b"GET / HTTP/1.1x", b"GET / HTTP/a.1", b"GET / HTTP/1.", b"GET / HTTP/1.1 "],
    ids=["trailing-garbage", "letter", "no-minor", "trailing-space"],
)
def test_malformed_version_is_400(run, request_line: bytes) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        return await feed_and_close(conn, request_line + b"\r\nHost: x\r\n\r\n")

    out, closed = run(go())
    assert_error(out, 400)
    assert closed


def test_bare_lf_request_is_served_or_400(run) -> None:
    """RFC 9112 §2.2: a bare LF may be accepted as a line end; else it is a 400."""

    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"GET / HTTP/1.1\nHost: x\n\n")
        return await conn.settle()

    resps, _ = parse_all(run(go()))
    assert resps[0].status in (200, 400)
