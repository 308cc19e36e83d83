"""Size limits (RFC 9110 §15.5.14, §15.5.15, RFC 6585 §5) at their documented defaults.

Config defaults (blazeasgi/config.py): request target 8192 bytes (414 past it), request
head 64 KiB (431), 100 header fields (431), body 1 GiB (413, decided from
Content-Length before any body byte is read). test_engine_limits.py checks the same
rules with small configured limits; here the defaults themselves are pinned, plus
the heads that never end and what a HEAD request gets back.

Choices: a target that is still growing past the limit is 414 as soon as it passes
it (not when some other guard trips); error responses to HEAD carry no content
(RFC 9110 §9.3.2 "the server MUST NOT send content in the response").
"""

from __future__ import annotations

import asyncio

import pytest

from ..conftest import MockConnection
from ..helpers.http import NO_DEFAULTS, closed_soon, parse_all
from ..helpers.rfc9112 import assert_rejected, assert_served, case, recording_app

KIB = 1024


def target(length: int) -> bytes:
    return b"GET /" + b"a" * (length - 1) + b" HTTP/1.1\r\nHost: x\r\n\r\n"


def fields(n: int, size: int = 1) -> bytes:
    """A head with ``n`` fields in all (Host included), each value ``size`` bytes."""
    lines = b"".join(b"X-%04d: %s\r\n" % (i, b"v" * size) for i in range(n - 1))
    return b"GET / HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"


def test_target_at_the_default_limit_is_served(run) -> None:
    [seen] = assert_served(run, target(8192), steps=(None, 1024))
    assert len(seen.raw_path) == 8192


def test_target_over_the_default_limit_is_414(run) -> None:
    assert_rejected(run, target(8193), 414, steps=(None, 1024))


def test_head_under_the_default_limit_is_served(run) -> None:
    data = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * (60 * KIB) + b"\r\n\r\n"
    [seen] = assert_served(run, data, steps=(None, 4096))
    assert len(seen.header(b"cookie")[0]) == 60 * KIB


def test_one_field_over_the_default_head_limit_is_431(run) -> None:
    data = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * (65 * KIB) + b"\r\n\r\n"
    assert_rejected(run, data, 431, steps=(None, 4096))


def test_many_fields_over_the_default_head_limit_are_431(run) -> None:
    assert_rejected(run, fields(90, 800), 431, steps=(None, 4096))


def test_default_field_count_is_served(run) -> None:
    [seen] = assert_served(run, fields(100), steps=(None, 256))
    assert len(seen.headers) == 100


def test_one_field_over_the_default_count_is_431(run) -> None:
    assert_rejected(run, fields(101), 431, steps=(None, 256))


def test_body_at_the_default_limit_is_answered(run) -> None:
    """1 GiB declared: the request reaches the app (which ignores the body); the
    response announces the close since the body will not be read."""
    data = b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (1 << 30)

    async def go() -> bytes:
        conn = MockConnection(recording_app, **NO_DEFAULTS)
        conn.feed(data + b"x" * 1000)
        await asyncio.sleep(0.01)
        return await conn.settle()

    [resp] = parse_all(run(go()))[0]
    assert resp.status == 200 and resp.closes


def test_body_over_the_default_limit_is_413_before_the_body(run) -> None:
    data = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % ((1 << 30) + 1)
    assert_rejected(run, data, 413)


def test_expect_continue_over_the_limit_gets_413_and_no_100(run) -> None:
    data = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n"
    result = assert_rejected(run, data, 413, max_body_size=100)
    assert [r.status for r in result.responses] == [413]


def test_target_that_never_ends_is_414_once_past_the_limit(run) -> None:
    async def go() -> tuple[bytes, bool, int]:
        conn = MockConnection(recording_app, max_target_size=64, **NO_DEFAULTS)
        fed = 0
        conn.feed(b"GET /")
        while not conn.transport.closed and fed < 400 * KIB:
            conn.feed(b"a" * 1024)
            fed += 1024
            await asyncio.sleep(0)
        return await conn.settle(), await closed_soon(conn), fed

    out, closed, fed = run(go())
    assert out.startswith(b"HTTP/1.1 414 "), out[:100]
    assert closed and fed <= 4 * KIB


@pytest.mark.parametrize(
    "prefix",
    [b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ", b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless-Name"],
    ids=["value", "name"],
)
def test_header_that_never_ends_is_cut(run, prefix: bytes) -> None:
    """llhttp buffers an unfinished field; the engine's guard (max_head_size plus one
    256 KiB read) bounds it: 431 and close before 1 MiB is taken in."""

    async def go() -> tuple[bytes, bool, int]:
        conn = MockConnection(recording_app, max_head_size=1024, **NO_DEFAULTS)
        conn.feed(prefix)
        fed = 0
        while not conn.transport.closed and fed < 1024 * KIB:
            conn.feed(b"v" * (16 * KIB))
            fed += 16 * KIB
            await asyncio.sleep(0)
        return await conn.settle(), await closed_soon(conn), fed

    out, closed, fed = run(go())
    assert out.startswith(b"HTTP/1.1 431 "), out[:100]
    assert closed and fed < 1024 * KIB


def test_empty_lines_before_a_request_are_bounded(run) -> None:
    """§2.2 lets a server skip empty lines before the request line; not forever."""

    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(recording_app, max_head_size=1024, **NO_DEFAULTS)
        for _ in range(64):
            if conn.transport.closed:
                break
            conn.feed(b"\r\n" * 8192)
            await asyncio.sleep(0)
        return await conn.settle(), await closed_soon(conn)

    out, closed = run(go())
    resps, _ = parse_all(out)
    assert [r.status for r in resps] == [431] and closed


HEAD_ERRORS = [
    case("413", b"HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", 413),
    case("414", b"HEAD /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    case("431", fields(12), 431),
]


@pytest.mark.parametrize(("data", "status"), HEAD_ERRORS)
def test_error_response_to_head_has_no_content(run, data: bytes, status: int) -> None:
    data = b"HEAD" + data[data.index(b" ") :]

    async def go() -> bytes:
        conn = MockConnection(recording_app, max_body_size=100, max_target_size=64, max_header_count=10)
        conn.feed(data)
        return await conn.settle()

    out = run(go())
    head, sep, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status) and sep, out
    assert rest == b"", f"content after the head of a HEAD response: {rest!r}"
