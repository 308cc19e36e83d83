"""RFC 9112 §6.2, §6.3 and RFC 9110 §8.6: Content-Length is ``1*DIGIT``, nothing else.

Choices: repeated Content-Length lines or lists are rejected even when the values
agree (§6.3 #5 allows collapsing identical values; rejecting is the strict reading).
Signs, hex, underscores, lists with different values and conflicting lines are in
test_engine_limits.py and not repeated here.
"""

from __future__ import annotations

import pytest

from ..helpers.rfc9112 import assert_rejected, assert_served, case, exchange

POST = b"POST / HTTP/1.1\r\nHost: x\r\n"


def cl(value: bytes, body: bytes = b"abc") -> bytes:
    return POST + b"Content-Length: " + value + b"\r\n\r\n" + body


REJECTED = [
    case("empty", cl(b"", b""), 400),
    case("only-whitespace", cl(b"   ", b""), 400),
    case("space-inside", cl(b"1 0", b"0123456789"), 400),
    case("decimal-point", cl(b"3.0"), 400),
    case("exponent", cl(b"1e1", b"0123456789"), 400),
    case("minus-zero", cl(b"-0", b""), 400),
    case("trailing-letter", cl(b"3a"), 400),
    case("unicode-digit", cl("\uff13".encode()), 400),
    case("overflow-2^64", cl(b"18446744073709551616", b""), 400),
    case("overflow-30-digits", cl(b"9" * 30, b""), 400),
    case("identical-repeated-lines", POST + b"Content-Length: 3\r\n" + cl(b"3")[len(POST) :], 400),
    case("identical-list", cl(b"3, 3"), 400),
    case("empty-list-element", cl(b",3"), 400),
    case("obs-fold", cl(b"\r\n 3"), 400),
    case("nul", cl(b"3\x00"), 400),
    case("space-before-colon", POST + b"Content-Length : 3\r\n\r\nabc", 400),
]


@pytest.mark.parametrize(("data", "status"), REJECTED)
def test_content_length_rejected(run, data: bytes, status: int) -> None:
    assert_rejected(run, data, status)


@pytest.mark.parametrize(
    ("value", "body"),
    [
        (b"003", b"abc"),
        (b" \t3 \t", b"abc"),
        (b"0", b""),
    ],
    ids=["leading-zeros", "surrounding-ows", "zero"],
)
def test_content_length_accepted(run, value: bytes, body: bytes) -> None:
    [seen] = assert_served(run, cl(value, body))
    assert seen.body == body


def test_content_length_name_is_case_insensitive(run) -> None:
    [seen] = assert_served(run, POST + b"CONTENT-length: 3\r\n\r\nabc")
    assert seen.body == b"abc"


def test_content_length_body_on_get_is_never_a_request(run) -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    data = b"GET /g HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled)
    [seen] = assert_served(run, data)
    assert (seen.path, seen.body) == ("/g", smuggled)


def test_content_length_is_exact_even_when_the_body_looks_like_requests(run) -> None:
    """Bytes past the declared length start the next request, nothing else does."""
    body = b"0123456789"
    data = cl(b"4", body[:4]) + b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n" + body[4:]
    first, second = assert_served(run, data, n=2)
    assert (first.body, second.path, second.body) == (b"0123", "/second", b"456789")


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\n\r\nhello",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_body_of_a_declined_upgrade_is_delivered(run, framing: bytes) -> None:
    """RFC 9110 §7.8: a server may ignore Upgrade and answer in HTTP/1.1; the request
    is then an ordinary one, body included (an h2c upgrade may carry a POST body)."""
    data = b"POST /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n" + framing
    result = exchange(run, data, want=1)
    assert [r.status for r in result.final] == [200]
    assert [s.body for s in result.seen] == [b"hello"]
