"""RFC 9112 §7.1: the chunked coding on requests.

chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG.

Choices:
* Bare CR or bare LF anywhere in the framing is 400 (§2.2 lets a recipient accept a
  bare LF as a line end; being strict keeps every hop's view of the body the same).
* Chunk extensions are metadata, not content: their total per request counts
  against the request-head budget (431 past it), so a body of tiny chunks with huge
  extensions (the CVE-2024-22019 pattern in Node) cannot make the server read
  unbounded bytes that never count toward the body limit.
* Trailer fields never frame, route or steer the connection, this request's or the
  next one's: they are dropped (RFC 9110 §6.5.1 lets a recipient discard them; the
  engine does). A Content-Length or Transfer-Encoding trailer is 400 (llhttp's
  verdict, kept: rejecting is the strict side of the same choice), and so is a
  Connection trailer: llhttp acts on that one by itself (it marks the connection
  closing), so it cannot be dropped.

Bad size characters, a body past the limit and a missing CRLF after the data are in
test_engine_limits.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..helpers.http import parse_all
from ..helpers.rfc9112 import AFTER, assert_rejected, assert_served, case, exchange, recording_app

HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def body(chunks: bytes) -> bytes:
    return HEAD + chunks


REJECTED = [
    # chunk-size grammar
    case("size-leading-space", body(b" 3\r\nabc\r\n0\r\n\r\n"), 400),
    case("size-trailing-space", body(b"3 \r\nabc\r\n0\r\n\r\n"), 400),
    case("size-trailing-htab", body(b"3\t\r\nabc\r\n0\r\n\r\n"), 400),
    case("size-plus-sign", body(b"+3\r\nabc\r\n0\r\n\r\n"), 400),
    case("size-minus-sign", body(b"-3\r\nabc\r\n0\r\n\r\n"), 400),
    case("size-0x-prefix", body(b"0x3\r\nabc\r\n0\r\n\r\n"), 400),
    case("size-underscore", body(b"1_0\r\n0123456789\r\n0\r\n\r\n"), 400),
    case("size-empty", body(b"\r\nabc\r\n0\r\n\r\n"), 400),
    case("size-overflows-64-bits", body(b"10000000000000000\r\nabc\r\n0\r\n\r\n"), 400),
    # line ends in the framing
    case("size-bare-lf", body(b"3\nabc\r\n0\r\n\r\n"), 400),
    case("size-bare-cr", body(b"3\rabc\r\n0\r\n\r\n"), 400),
    case("data-bare-lf", body(b"3\r\nabc\n0\r\n\r\n"), 400),
    case("data-bare-cr", body(b"3\r\nabc\r0\r\n\r\n"), 400),
    case("data-longer-than-size", body(b"3\r\nabcd\r\n0\r\n\r\n"), 400),
    case("last-chunk-bare-lf", body(b"3\r\nabc\r\n0\n\n"), 400),
    case("last-chunk-with-data", body(b"0\r\nabc\r\n\r\n"), 400),
    # chunk extensions
    case("ext-bare-cr", body(b"3;a\rb\r\nabc\r\n0\r\n\r\n"), 400),
    case("ext-bare-lf", body(b"3;a\nb\r\nabc\r\n0\r\n\r\n"), 400),
    case("ext-nul", body(b"3;a\x00b\r\nabc\r\n0\r\n\r\n"), 400),
    case("ext-control-in-value", body(b"3;a=\x01\r\nabc\r\n0\r\n\r\n"), 400),
    case("ext-empty-name", body(b"3;\r\nabc\r\n0\r\n\r\n"), 400),
    # trailer section
    case("trailer-not-a-field", body(b"3\r\nabc\r\n0\r\nBad Header\r\n\r\n"), 400),
    case("trailer-nul", body(b"3\r\nabc\r\n0\r\nX: a\x00b\r\n\r\n"), 400),
    case("trailer-obs-fold", body(b"3\r\nabc\r\n0\r\nX: a\r\n b\r\n\r\n"), 400),
    case("trailer-content-length", body(b"3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n"), 400),
    case("trailer-transfer-encoding", body(b"3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400),
    case(
        "trailer-connection",
        body(b"3\r\nabc\r\n0\r\nConnection: close\r\n\r\n"),
        400,
    ),
]


@pytest.mark.parametrize(("data", "status"), REJECTED)
def test_chunked_rejected(run, data: bytes, status: int) -> None:
    assert_rejected(run, data, status)


ACCEPTED = [
    case("uppercase-hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    case("leading-zeros", b"0003\r\nabc\r\n000\r\n\r\n", b"abc"),
    case("ext-token", b"3;name\r\nabc\r\n0;last\r\n\r\n", b"abc"),
    case("ext-token-value", b"3;name=value;other=1\r\nabc\r\n0\r\n\r\n", b"abc"),
    case("ext-quoted-value", b'3;name="a b;c"\r\nabc\r\n0\r\n\r\n', b"abc"),
    case("trailer-field", b"3\r\nabc\r\n0\r\nX-Checksum: 1234\r\n\r\n", b"abc"),
    # trailers that would steer routing or the connection are dropped, never applied
    case("trailer-host", b"3\r\nabc\r\n0\r\nHost: evil\r\n\r\n", b"abc"),
    case("trailer-expect", b"3\r\nabc\r\n0\r\nExpect: 100-continue\r\n\r\n", b"abc"),
    case("empty-body", b"0\r\n\r\n", b""),
    case("chunks-that-look-like-requests", b"5\r\nGET /\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n", b"GET /\r\n\r\n"),
]


@pytest.mark.parametrize(("chunks", "expected"), ACCEPTED)
def test_chunked_accepted(run, chunks: bytes, expected: bytes) -> None:
    [seen] = assert_served(run, body(chunks))  # and the next request: served, untouched
    assert seen.body == expected
    assert seen.header(b"host") == [b"x"] and seen.header(b"x-checksum") == []


def test_trailer_fields_never_reach_the_next_request(run) -> None:
    data = body(b"3\r\nabc\r\n0\r\nX-User: admin\r\nCookie: session=stolen\r\n\r\n")
    result = exchange(run, data + AFTER, want=2)
    assert [r.status for r in result.final] == [200, 200]
    after = result.seen[1]
    assert after.path == "/after"
    assert after.header(b"x-user") == [] and after.header(b"cookie") == []


def test_many_small_chunks_are_a_valid_body(run) -> None:
    """120,000 one-byte chunks: 120 KB of body in 720 KB of framing, all legal."""
    payload = bytes(range(256)) * 468 + b"x" * 192
    chunks = b"".join(b"1\r\n%s\r\n" % payload[i : i + 1] for i in range(len(payload))) + b"0\r\n\r\n"
    [seen] = assert_served(run, body(chunks), steps=(65536,))
    assert seen.body == payload


def test_chunk_extensions_are_bounded_in_total(run) -> None:
    """Twenty chunks of 1 byte, each with a 40 KiB extension: 800 KiB that is not body."""
    ext = b";e=" + b"v" * 40960
    chunks = b"".join(b"1%s\r\nx\r\n" % ext for _ in range(20)) + b"0\r\n\r\n"
    # (reads of at most 64 KiB: uvloop reads 256 KiB at a time, the guard allows one read)
    assert_rejected(run, body(chunks), 431, steps=(65536, 8192))


def test_one_response_when_the_bound_trips_in_the_last_read(run) -> None:
    """Reads of 200 KiB (uvloop reads up to 256 KiB): the extension total passes the
    guard in the read that also ends the body. One request, one response."""

    async def go() -> tuple[bytes, bool]:
        from ..conftest import MockConnection
        from ..helpers.http import NO_DEFAULTS, closed_soon

        conn = MockConnection(recording_app, **NO_DEFAULTS)
        ext = b";e=" + b"v" * 400_000
        rest = b"1" + ext + b"\r\nx\r\n0\r\n\r\n"
        out = b""
        for piece in (HEAD, rest[:200_000], rest[200_000:]):
            conn.feed(piece)
            out += await conn.settle(3)
        await asyncio.sleep(0.01)
        return out + await conn.settle(), await closed_soon(conn)

    out, _ = run(go())
    resps, _ = parse_all(out)
    assert len([r for r in resps if r.status >= 200]) == 1, out


def test_trailer_section_is_bounded(run) -> None:
    chunks = b"3\r\nabc\r\n0\r\nX-Big: " + b"v" * 200_000 + b"\r\n\r\n"
    assert_rejected(run, body(chunks), 431, steps=(None, 8192), max_head_size=1024)


# -- a body found broken while an ASGI app reads it ------------------------------------------


async def quiet_on_disconnect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The common ASGI pattern: stop (without answering) on http.disconnect."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


async def answers_anyway(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that ignores http.disconnect and answers with what it got."""
    got = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        got += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": got})


@pytest.mark.parametrize(
    "app",
    [
        pytest.param(quiet_on_disconnect, id="app-returns-quietly"),
        pytest.param(answers_anyway, id="app-answers-anyway"),
    ],
)
def test_broken_body_is_answered_400_whatever_the_asgi_app_does(run, app: Any) -> None:
    async def go() -> bytes:
        from ..conftest import MockConnection
        from ..helpers.http import NO_DEFAULTS

        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(HEAD + b"3\r\nabc\r\n")
        await conn.settle()  # the app has the first chunk and waits for more
        conn.feed(b"zz\r\n")
        await asyncio.sleep(0.01)
        return await conn.settle()

    out = run(go())
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert b"\r\nconnection: close\r\n" in out
