"""RFC 9112 §9.3 and RFC 9110 §10.1.1: a body the app never reads is still body.

Whatever the app does, the bytes of a request body are skipped (or the connection is
closed, announced by ``connection: close``), never parsed as a next request: this is
how Blazeio-style servers got smuggled through. Every body below is itself a valid
request, ``GET /smuggled``; the tests check it never reaches the app.

test_engine_body.py covers the native app ignoring a Content-Length or chunked body in
one packet or trickling after the answer; here: HEAD/GET bodies, ASGI apps, streamed
answers, bodies past the discard limit, the 500 path, 100-continue and bodies behind
a rejected head.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from blazeasgi import App, Request, Response, StreamingResponse

from ..conftest import MockConnection
from ..helpers.http import NO_DEFAULTS, closed_soon, parse_all

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"

paths: list[str] = []
native = App()


@native.route("/ignore", ["GET", "HEAD", "POST"])
def ignore(request: Request) -> Response:
    paths.append(request.path)
    return Response(b"ignored")


@native.post("/ignore-streamed")
def ignore_streamed(request: Request) -> StreamingResponse:
    paths.append(request.path)

    async def gen() -> Any:
        yield b"a"
        await asyncio.sleep(0.005)
        yield b"b"

    return StreamingResponse(gen())


@native.post("/fail")
def fail(request: Request) -> Response:
    paths.append(request.path)
    raise RuntimeError("the app failed before reading the body")


@native.route("/{rest:path}", ["GET", "POST"])
def anything(request: Request) -> Response:
    paths.append(request.path)
    return Response(request.path.encode())


async def asgi_ignore(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    paths.append(scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ignored"})


def cl(method: bytes, path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (
        method,
        path,
        extra,
        len(body),
        body,
    )


def chunked(path: bytes, body: bytes) -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % path
    return head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


async def drive(app: Any, pieces: list[bytes], **config: Any) -> tuple[bytes, bool]:
    paths.clear()
    conn = MockConnection(app, **{**NO_DEFAULTS, **config})
    out = b""
    for piece in pieces:
        if conn.transport.closed:
            break
        conn.feed(piece)
        await asyncio.sleep(0.01)
        out += await conn.settle()
    await asyncio.sleep(0.01)
    out += await conn.settle()
    return out, await closed_soon(conn, 0.05)


def statuses(out: bytes, methods: list[str] | None = None) -> list[int]:
    return [r.status for r in parse_all(out, methods)[0]]


def cl_head(method: bytes, path: bytes, length: int, extra: bytes = b"") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (method, path, extra, length)


N = len(SMUGGLED)
KEPT = [
    ("head-with-body", native, [cl(b"HEAD", b"/ignore", SMUGGLED) + NEXT]),
    ("get-with-body", native, [cl(b"GET", b"/ignore", SMUGGLED) + NEXT]),
    ("asgi-same-read", asgi_ignore, [cl(b"POST", b"/a", SMUGGLED) + NEXT]),
    ("asgi-body-after-answer", asgi_ignore, [cl_head(b"POST", b"/a", N), SMUGGLED[:10], SMUGGLED[10:], NEXT]),
    ("streamed-answer", native, [cl_head(b"POST", b"/ignore-streamed", N), SMUGGLED, NEXT]),
]


@pytest.mark.parametrize(("app", "pieces"), [c[1:] for c in KEPT], ids=[c[0] for c in KEPT])
def test_unread_body_is_skipped_and_the_connection_kept(run, app: Any, pieces: list[bytes]) -> None:
    out, closed = run(drive(app, pieces))
    assert statuses(out, ["HEAD" if pieces[0].startswith(b"HEAD") else "GET", "GET"]) == [200, 200], out
    assert "/smuggled" not in paths
    assert paths[-1] == "/next" and not closed


CLOSED = [
    (
        "asgi-chunked-after-answer",
        asgi_ignore,
        [chunked(b"/a", SMUGGLED)[:-40], chunked(b"/a", SMUGGLED)[-40:] + NEXT],
    ),
    (
        "past-discard-limit",
        native,
        [cl_head(b"POST", b"/ignore", 2_000_000 + N) + b"x" * 1000, b"x" * 1_999_000 + SMUGGLED + NEXT],
    ),
    ("app-failed", native, [cl(b"POST", b"/fail", SMUGGLED) + NEXT]),
    (
        "expect-100-never-sent-but-body-comes",
        native,
        [cl_head(b"POST", b"/ignore", N, b"Expect: 100-continue\r\n"), SMUGGLED + NEXT],
    ),
]


@pytest.mark.parametrize(("app", "pieces"), [c[1:] for c in CLOSED], ids=[c[0] for c in CLOSED])
def test_unread_body_closes_the_connection_with_notice(run, app: Any, pieces: list[bytes]) -> None:
    """When skipping is not safe (unknown length, too long, failed app, a client
    waiting for 100-continue) the response says close and the connection closes."""
    out, closed = run(drive(app, pieces))
    resps, _ = parse_all(out)
    assert len(resps) == 1 and resps[0].closes, out
    assert closed
    assert "/smuggled" not in paths and "/next" not in paths


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: nonsense\r\nContent-Length: %d\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: %d\r\n\r\n",
    ],
    ids=["413", "417", "400"],
)
def test_body_behind_a_rejected_head_is_never_parsed(run, head: bytes) -> None:
    out, closed = run(drive(native, [head % len(SMUGGLED) + SMUGGLED + NEXT], max_body_size=10))
    assert len(statuses(out)) == 1 and statuses(out)[0] in (400, 413, 417)
    assert closed and paths == []
