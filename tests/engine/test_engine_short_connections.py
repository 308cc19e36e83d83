"""The HTTP version of requests with a Connection field (Connection: close behind a
default nginx, keep-alive from browsers): read from the request line when the read
starts with it (RequestChecks._version), from the parser otherwise; right wherever
the head begins (pipelined, split across reads, after a body or blank lines).
"""

from __future__ import annotations

import pytest

from blazeasgi import App, Request, Response

from ..conftest import MockConnection
from ..helpers.http import NO_DEFAULTS, get, parse_all

#: Closed loops collected after each test, in this thread (conftest.collect_garbage).
pytestmark = pytest.mark.usefixtures("collect_garbage")

app = App()


@app.get("/v")
def version(request: Request) -> Response:
    return Response(request.http_version.encode(), media_type="text/plain")


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="text/plain")


KEEP = b"Connection: keep-alive\r\n"
#: What an answer says of the connection: HTTP/1.0 kept alive says so, HTTP/1.1 says nothing.
KEPT_1_0 = (b"1.0", b"keep-alive")
KEPT_1_1 = (b"1.1", None)


@pytest.mark.parametrize(
    ("data", "answers"),
    [
        # A Connection field: the version is read from the request line.
        (get("/v", KEEP, version=b"1.0"), [KEPT_1_0]),
        (get("/v", KEEP), [KEPT_1_1]),
        (get("/v", b"Connection: close\r\n", version=b"1.0"), [(b"1.0", b"close")]),
        (get("/v", b"Connection: close\r\n"), [(b"1.1", b"close")]),
        # Pipelined in one read: the second head starts after the first, not at the
        # read's start (same method and target length as the first).
        (get("/v") + get("/v", KEEP, version=b"1.0"), [KEPT_1_1, KEPT_1_0]),
        (get("/v", KEEP, version=b"1.0") + get("/v", KEEP), [KEPT_1_0, KEPT_1_1]),
        (
            get("/v")
            + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            + get("/v", b"Connection: close\r\n", version=b"1.0"),
            [KEPT_1_1, (b"hello", None), (b"1.0", b"close")],
        ),
        # Blank lines before the request line.
        (b"\r\n" + get("/v", KEEP, version=b"1.0"), [KEPT_1_0]),
    ],
)
@pytest.mark.parametrize("split", [None, 3, 17])
def test_http_version_of_heads_with_a_connection_field(
    run, data: bytes, answers: list[tuple[bytes, bytes | None]], split: int | None
) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        if split is None:
            conn.feed(data)
        else:
            conn.feed(data[:split])
            conn.feed(data[split:])
        return await conn.settle()

    resps, rest = parse_all(run(go()), eof=False)
    assert rest == b""
    assert [(r.body, r.get(b"connection")) for r in resps] == answers


def test_http_version_after_a_body_that_ends_in_the_next_method(run) -> None:
    """A read may end a body and begin the next request's method: the request line
    then starts in the read before, and its version is still its own."""
    body = b"x" * 5

    async def go() -> bytes:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n" + body + b"G")
        conn.feed(b"ET /v HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        return await conn.settle()

    resps, rest = parse_all(run(go()), eof=False)
    assert rest == b""
    assert [r.body for r in resps] == [body, b"1.0"]
