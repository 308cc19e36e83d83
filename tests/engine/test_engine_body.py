"""Engine request bodies (Content-Length, chunked, streaming, 100-continue, read
backpressure, discarding) and response errors (exceptions, wrong lengths, write
backpressure)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import pytest

from blazeasgi import App, Request, Response, StreamingResponse

from ..conftest import MockConnection
from ..helpers.http import (
    HI,
    NO_DEFAULTS,
    Client,
    closed_soon,
    get,
    n_responses,
    parse_all,
    pump,
)

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


#: Closed loops collected after each test, in this thread (conftest.collect_garbage).
pytestmark = pytest.mark.usefixtures("collect_garbage")


app = App()
seen: list[str] = []
progress: list[bytes] = []
gates: dict[str, asyncio.Event] = {}


@app.get("/")
def index(request: Request) -> Response:
    return Response(b"hi", media_type="text/plain")


@app.get("/sync/{name}")
def sync_named(request: Request) -> Response:
    seen.append(request.path)
    return Response(f"sync {request.path_params['name']}".encode(), media_type="text/plain")


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body())


@app.post("/pieces")
async def pieces(request: Request) -> Response:
    got = []
    async for part in request.stream():
        got.append(part)
        progress.append(part)
    return Response(b"|".join(got))


@app.post("/gated")
async def gated(request: Request) -> Response:
    await gates["read"].wait()
    total = 0
    async for part in request.stream():
        total += len(part)
        if "more" in gates:
            await gates["more"].wait()
            gates["more"].clear()
    return Response(str(total).encode())


@app.post("/ignore")
def ignore(request: Request) -> Response:
    seen.append(request.path)
    return Response(b"ignored")


@app.post("/ignore-async")
async def ignore_async(request: Request) -> Response:
    await asyncio.sleep(0)
    return Response(b"ignored")


@app.get("/boom")
def boom(request: Request) -> Response:
    raise ValueError("boom-sync")


@app.post("/boom-after-read")
async def boom_after_read(request: Request) -> Response:
    await request.body()
    await asyncio.sleep(0.001)
    raise ValueError("boom-async")


@app.get("/stream-boom")
def stream_boom(request: Request) -> StreamingResponse:
    def gen() -> Any:
        yield b"part"
        raise ValueError("boom-stream")

    return StreamingResponse(gen())


@app.get("/astream-boom")
async def astream_boom(request: Request) -> StreamingResponse:
    async def gen() -> Any:
        yield b"part"
        await asyncio.sleep(0.001)
        raise ValueError("boom-astream")

    return StreamingResponse(gen())


@app.get("/too-long")
def too_long(request: Request) -> StreamingResponse:
    return StreamingResponse([b"abc", b"def"], headers={"content-length": "5"})


@app.get("/too-short")
def too_short(request: Request) -> StreamingResponse:
    return StreamingResponse([b"abc"], headers={"content-length": "5"})


@app.get("/native-mismatch")
def native_mismatch(request: Request) -> Response:
    return Response(b"abcdef", headers={"content-length": "3"})


BIG_CHUNK = 65536
BIG_COUNT = 800  # 50 MiB
PAYLOADS = [bytes([65 + i]) * BIG_CHUNK for i in range(26)]
produced = [0]


@app.get("/big")
def big(request: Request) -> StreamingResponse:
    def gen() -> Any:
        for i in range(BIG_COUNT):
            produced[0] += 1
            yield PAYLOADS[i % 26]

    return StreamingResponse(gen())


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif path == "/boom":
        raise RuntimeError("asgi-boom")
    elif path == "/boom-mid":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("asgi-boom-mid")
    elif path == "/too-long":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cd"})
    elif path == "/too-short":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"ab"})
    else:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def post(path: str, body: bytes | None = None, extra: bytes = b"", length: int | None = None) -> bytes:
    if length is None:
        length = len(body or b"")
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n" % (path.encode(), length, extra)
    return head + (body or b"")


def chunked(path: str, parts: list[bytes], trailer: bytes = b"") -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % path.encode()
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
    return head + body + b"0\r\n" + trailer + b"\r\n"


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


# -- Content-Length and chunked ----------------------------------------------------------


def test_content_length_body(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(post("/echo", b"hello world") + post("/echo", b"") + get("/"))
        return await pump(conn, n_responses(3))

    assert run(go()) == ok(b"hello world") + ok(b"") + HI


def test_content_length_body_over_socket(serve) -> None:
    srv = serve(app)
    body = bytes(range(256)) * 1000
    with srv.connect() as sock:
        client = Client(sock)
        client.send(post("/echo", body))
        assert client.response().body == body
        client.send(post("/echo", b"again"))
        assert client.response().body == b"again"


@pytest.mark.parametrize("seed", range(4))
def test_chunked_body_split_at_random_boundaries(run, seed: int) -> None:
    rng = random.Random(seed)
    parts = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))) for _ in range(6)]
    body = b"".join(parts)
    ext_head = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with_ext = ext_head + b"3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: 1\r\n\r\n"
    data = chunked("/echo", parts) + with_ext + post("/echo", b"tail") + get("/")

    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 40)
            conn.feed(data[pos : pos + step])
            pos += step
            if rng.random() < 0.5:
                await asyncio.sleep(0)
        return await pump(conn, n_responses(4))

    assert run(go()) == ok(body) + ok(b"abcde") + ok(b"tail") + HI


def test_chunked_body_to_asgi_app(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(asgi_app, **NO_DEFAULTS)
        data = chunked("/echo", [b"hello ", b"asgi"])
        for i in range(len(data)):
            conn.feed(data[i : i + 1])
        return await pump(conn, n_responses(1))

    assert run(go()) == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello asgi"


def test_chunked_body_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        client = Client(sock)
        data = chunked("/echo", [b"x" * 5000, b"y" * 70000, b"z"])
        for i in range(0, len(data), 999):
            client.send(data[i : i + 999])
        assert client.response().body == b"x" * 5000 + b"y" * 70000 + b"z"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_streams_to_handler_as_it_arrives(run, framing: str) -> None:
    def piece(data: bytes) -> bytes:
        return data if framing == "content-length" else b"%x\r\n%s\r\n" % (len(data), data)

    async def go() -> list[Any]:
        conn = MockConnection(app, **NO_DEFAULTS)
        if framing == "content-length":
            conn.feed(post("/pieces", length=9))
        else:
            conn.feed(b"POST /pieces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        steps = []
        for part in (b"abc", b"def", b"ghi"):
            conn.feed(piece(part))
            out = await conn.settle()
            steps.append((list(progress), out))
        if framing == "chunked":
            conn.feed(b"0\r\n\r\n")
        done = steps[-1][1]
        return [*steps, done + await pump(conn, lambda d: n_responses(1)(done + d))]

    progress.clear()
    *steps, final = run(go())
    assert steps[0] == ([b"abc"], b"")
    assert steps[1] == ([b"abc", b"def"], b"")
    assert steps[2][0] == [b"abc", b"def", b"ghi"]
    assert final == ok(b"abc|def|ghi")


# -- Expect: 100-continue ------------------------------------------------------------------


def test_expect_continue_sent_when_handler_reads(run) -> None:
    async def go() -> list[bytes]:
        conn = MockConnection(app, **NO_DEFAULTS)
        gates["read"] = asyncio.Event()
        conn.feed(post("/gated", length=5, extra=b"Expect: 100-continue\r\n"))
        before = await conn.settle()
        gates["read"].set()
        interim = await pump(conn, lambda d: d == CONTINUE)
        conn.feed(b"hello")
        final = await pump(conn, n_responses(1))
        return [before, interim, final]

    before, interim, final = run(go())
    assert before == b""  # nothing until the handler starts reading
    assert interim == CONTINUE
    assert final == ok(b"5")


def test_expect_continue_then_keep_alive(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(post("/echo", length=3, extra=b"Expect: 100-continue\r\n"))
        out = await pump(conn, lambda d: d == CONTINUE)
        conn.feed(b"abc" + get("/"))
        return out + await pump(conn, n_responses(2))

    assert run(go()) == CONTINUE + ok(b"abc") + HI


def test_expect_continue_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(post("/echo", length=4, extra=b"Expect: 100-continue\r\n"))
        interim = client.response(informational=True)
        assert interim.status == 100 and interim.raw == CONTINUE
        client.send(b"data")
        assert client.response().body == b"data"


@pytest.mark.parametrize("path", ["/ignore", "/ignore-async"])
def test_expect_continue_never_sent_if_handler_does_not_read(run, path: str) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(post(path, length=5, extra=b"Expect: 100-continue\r\n"))
        out = await pump(conn, n_responses(1))
        return out + await conn.settle()

    out = run(go())
    assert CONTINUE not in out
    resps, rest = parse_all(out)
    assert [r.status for r in resps] == [200] and rest == b""


@pytest.mark.parametrize(
    "request_head",
    [
        post("/ignore", length=5, extra=b"Expect: 100-continue\r\n"),
        post("/ignore", length=5_000_000),
        b"POST /ignore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
    ids=["expect-continue", "large-body", "chunked"],
)
def test_unread_body_close_is_announced(run, request_head: bytes) -> None:
    """When the server answers without reading the body and then drops the
    connection, the response must say so (RFC 9110 §10.1.1), or a client reusing the
    connection fails."""

    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(request_head)
        out = await pump(conn, n_responses(1))
        return out, await closed_soon(conn, 0.2)

    out, closed = run(go())
    resps, _ = parse_all(out)
    assert resps[0].status == 200
    assert resps[0].closes == closed


# -- read backpressure -------------------------------------------------------------------


def test_read_backpressure_pauses_and_resumes(run) -> None:
    async def go() -> list[Any]:
        conn = MockConnection(app, read_high_water=1024, **NO_DEFAULTS)
        gates["read"] = asyncio.Event()
        gates.pop("more", None)
        transport = conn.transport
        states = []
        conn.feed(post("/gated", length=4000) + b"a" * 500)
        await conn.settle()
        states.append(transport.reading)  # 500 buffered: below the mark
        conn.feed(b"b" * 1000)
        await conn.settle()
        states.append(transport.reading)  # 1500 buffered: paused
        gates["read"].set()
        await conn.settle()
        states.append(transport.reading)  # consumed: resumed
        conn.feed(b"c" * 2500)
        return [*states, await pump(conn, n_responses(1)), transport.reading]

    before, paused, resumed, out, after = run(go())
    assert (before, paused, resumed, after) == (True, False, True, True)
    assert out == ok(b"4000")


def test_read_backpressure_chunked_body(run) -> None:
    async def go() -> list[Any]:
        conn = MockConnection(app, read_high_water=1024, **NO_DEFAULTS)
        gates["read"] = asyncio.Event()
        gates.pop("more", None)
        conn.feed(b"POST /gated HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.feed(b"800\r\n" + b"x" * 2048 + b"\r\n")
        await conn.settle()
        paused = not conn.transport.reading
        gates["read"].set()
        await conn.settle()
        resumed = conn.transport.reading
        conn.feed(b"0\r\n\r\n")
        return [paused, resumed, await pump(conn, n_responses(1))]

    assert run(go()) == [True, True, ok(b"2048")]


def test_read_backpressure_follows_a_slow_consumer(run) -> None:
    """Reading pauses again each time the handler falls behind."""

    async def go() -> list[bool]:
        conn = MockConnection(app, read_high_water=1024, **NO_DEFAULTS)
        gates["read"] = asyncio.Event()
        gates["read"].set()
        more = gates["more"] = asyncio.Event()
        conn.feed(post("/gated", length=6000) + b"a" * 100)
        await conn.settle()  # handler took 100 bytes, now waits on "more"
        states = []
        for _ in range(2):
            conn.feed(b"b" * 2000)
            await conn.settle()
            states.append(conn.transport.reading)
            more.set()
            await conn.settle()
            states.append(conn.transport.reading)
        gates.pop("more").set()
        conn.feed(b"c" * 1900)
        await pump(conn, n_responses(1))
        return states

    try:
        assert run(go()) == [False, True, False, True]
    finally:
        gates.pop("more", None)


# -- unread bodies -------------------------------------------------------------------------

EVIL = get("/sync/evil")  # a body that looks like a request


@pytest.mark.parametrize("path", ["/ignore", "/ignore-async"])
def test_unread_body_in_same_packet_is_discarded(run, path: str) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(post(path, EVIL) + get("/sync/next"))
        return await pump(conn, n_responses(2))

    seen.clear()
    out = run(go())
    resps, rest = parse_all(out)
    assert [r.body for r in resps] == [b"ignored", b"sync next"] and rest == b""
    assert "/sync/evil" not in seen


def test_unread_body_arriving_after_response_is_discarded(run) -> None:
    async def go() -> list[bytes]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(post("/ignore", length=len(EVIL)))
        first = await pump(conn, n_responses(1))
        outs = [first]
        for i in range(0, len(EVIL), 5):  # the body trickles in after the answer
            conn.feed(EVIL[i : i + 5])
            outs.append(await conn.settle())
        conn.feed(get("/sync/next"))
        outs.append(await pump(conn, n_responses(1)))
        return outs

    seen.clear()
    first, *middle, last = run(go())
    assert first == ok(b"ignored")
    assert all(m == b"" for m in middle)
    assert last == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\ncontent-type: text/plain; charset=utf-8\r\n\r\nsync next"
    )
    assert "/sync/evil" not in seen


def test_unread_body_over_socket(serve) -> None:
    srv = serve(app)
    seen.clear()
    with srv.connect() as sock:
        client = Client(sock)
        client.send(post("/ignore", EVIL) + get("/sync/next"))
        assert client.response().body == b"ignored"
        assert client.response().body == b"sync next"
    assert "/sync/evil" not in seen


def test_unread_chunked_body_in_same_packet_is_discarded(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(chunked("/ignore", [EVIL]) + get("/sync/next"))
        return await pump(conn, n_responses(2))

    seen.clear()
    resps, rest = parse_all(run(go()))
    assert [r.body for r in resps] == [b"ignored", b"sync next"] and rest == b""
    assert "/sync/evil" not in seen


# -- handler exceptions --------------------------------------------------------------------

ERROR_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 21\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n\r\nInternal Server Error"
)


def _tracebacks(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "blazeasgi.error" and r.exc_info is not None and text in str(r.exc_info[1])
    ]


@pytest.mark.parametrize(
    ("target", "request_bytes", "message"),
    [
        ("native-sync", get("/boom"), "boom-sync"),
        ("native-async", post("/boom-after-read", b"x"), "boom-async"),
        ("asgi", get("/boom"), "asgi-boom"),
    ],
)
def test_exception_before_response_gives_500(
    run, caplog, target: str, request_bytes: bytes, message: str
) -> None:
    served = asgi_app if target == "asgi" else app

    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(served, **NO_DEFAULTS)
        conn.feed(request_bytes)
        out = await pump(conn, n_responses(1))
        return out + await conn.settle(), await closed_soon(conn)

    with caplog.at_level(logging.ERROR, logger="blazeasgi.error"):
        out, closed = run(go())
    assert out == ERROR_500
    assert closed
    records = _tracebacks(caplog, message)
    assert len(records) == 1
    assert "Traceback" in caplog.text and message in caplog.text


def test_exception_before_response_over_socket(serve, caplog) -> None:
    srv = serve(app)
    with caplog.at_level(logging.ERROR, logger="blazeasgi.error"), srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(get("/boom"))
        resp = client.response()
        assert resp.status == 500 and resp.closes
        assert client.is_closed()
    assert _tracebacks(caplog, "boom-sync")


def test_exception_in_pipeline_still_answers(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/") + get("/boom") + get("/"))
        out = await conn.settle()
        return out, await closed_soon(conn)

    out, closed = run(go())
    assert out == HI + ERROR_500
    assert closed


@pytest.mark.parametrize(
    ("served", "path", "message"),
    [
        (app, "/stream-boom", "boom-stream"),
        (app, "/astream-boom", "boom-astream"),
        (asgi_app, "/boom-mid", "asgi-boom-mid"),
    ],
    ids=["sync-iter", "async-iter", "asgi"],
)
def test_exception_after_stream_started_closes(run, caplog, served: Any, path: str, message: str) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(served, **NO_DEFAULTS)
        conn.feed(get(path))
        out = await pump(conn, lambda d: b"4\r\npart\r\n" in d)
        closed = await closed_soon(conn)
        return out + conn.transport.take(), closed

    with caplog.at_level(logging.ERROR, logger="blazeasgi.error"):
        out, closed = run(go())
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head
    assert body == b"4\r\npart\r\n"  # no last chunk: the client sees the truncation
    assert closed
    assert _tracebacks(caplog, message)


def test_exception_after_stream_started_over_socket(serve) -> None:
    srv = serve(app)
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(get("/astream-boom"))
        data = client.read_until_close()
    assert data.endswith(b"\r\n\r\n4\r\npart\r\n")


# -- declared length vs body ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("served", "path", "declared", "max_body"),
    [
        (app, "/too-long", 5, b"abc"),
        (app, "/too-short", 5, b"abc"),
        (asgi_app, "/too-long", 3, b"ab"),
        (asgi_app, "/too-short", 3, b"ab"),
    ],
    ids=["native-long", "native-short", "asgi-long", "asgi-short"],
)
def test_length_mismatch_closes_instead_of_malformed_stream(
    run, served: Any, path: str, declared: int, max_body: bytes
) -> None:
    async def go() -> tuple[bytes, bool, bytes]:
        conn = MockConnection(served, **NO_DEFAULTS)
        conn.feed(get(path))
        out = await pump(conn, lambda d: b"\r\n\r\n" in d)
        closed = await closed_soon(conn)
        out += conn.transport.take()
        conn.feed(get("/"))
        return out, closed, await conn.settle()

    out, closed, later = run(go())
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-length: %d\r\n" % declared in head + b"\r\n"
    # never more than declared, never padded: the stream is cut and the connection
    # closed, so the client cannot take it for a complete body
    assert max_body.startswith(body)
    assert len(body) < declared
    assert closed
    assert later == b""


def test_native_response_with_wrong_content_length_is_well_formed(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/native-mismatch"))
        out = await pump(conn, n_responses(1))
        out += await conn.settle()
        if conn.transport.closed:
            return out, True
        conn.feed(get("/"))
        return out + await pump(conn, n_responses(1)), False

    out, closed = run(go())
    resps, rest = parse_all(out, eof=False)
    assert rest == b""
    assert len(resps[0].all(b"content-length")) == 1
    if not closed:
        assert resps[0].body == b"abcdef"
        assert resps[1].raw == HI


# -- write backpressure --------------------------------------------------------------------


def _decode_chunked(data: bytes) -> bytes:
    view = memoryview(data)
    out = bytearray()
    pos = 0
    while True:
        nl = data.index(b"\r\n", pos)
        size = int(data[pos:nl], 16)
        pos = nl + 2
        if size == 0:
            assert data[pos:] == b"\r\n"
            return bytes(out)
        out += view[pos : pos + size]
        assert data[pos + size : pos + size + 2] == b"\r\n"
        pos += size + 2


def test_write_backpressure_over_socket(serve) -> None:
    srv = serve(app)
    produced[0] = 0
    sock = srv.slow_reader()
    try:
        sock.sendall(get("/big"))
        deadline = time.monotonic() + 5
        while produced[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        # wait until the producer stops advancing while we are not reading
        last = -1
        while produced[0] != last and time.monotonic() < deadline:
            last = produced[0]
            time.sleep(0.15)
        stalled = produced[0]
        assert 0 < stalled < BIG_COUNT // 4, stalled

        data = bytearray()
        while not data.endswith(b"\r\n0\r\n\r\n"):
            chunk = sock.recv(1 << 20)
            assert chunk, "connection closed early"
            data += chunk
    finally:
        sock.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    decoded = _decode_chunked(body)
    assert len(decoded) == BIG_CHUNK * BIG_COUNT
    assert decoded == b"".join(PAYLOADS[i % 26] for i in range(BIG_COUNT))
    assert produced[0] == BIG_COUNT
