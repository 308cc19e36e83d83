"""RFC 9112 §5 and RFC 9110 §5.1, §5.5: header field lines.

field-line = field-name ":" OWS field-value OWS, field-name a token, field-value
visible ASCII, SP, HTAB and obs-text, lines ended by CRLF.

Choices (strict):
* Whitespace between the name and the colon: 400 (§5.1 makes it a MUST).
* obs-fold: 400 (§5.2 allows 400 or replacing by SP; rejecting is the strict one).
* Bare LF as a line end: 400. §2.2 lets a recipient accept it; every hop reading
  line ends the same way is what keeps smuggling out, so blazeasgi does not.
* Bare CR anywhere: 400 (§2.2 MUST reject or replace by SP; rejecting).
* obs-text (bytes 0x80-0xFF) in values is accepted, as RFC 9110 §5.5 requires.
* Leading and trailing OWS are not part of the value (§5): the app never sees them.
"""

from __future__ import annotations

import pytest

from ..helpers.rfc9112 import assert_rejected, assert_served, case

LINE = b"GET / HTTP/1.1\r\n"


def head(fields: bytes) -> bytes:
    return LINE + b"Host: x\r\n" + fields + b"\r\n"


REJECTED = [
    case("space-before-colon", head(b"X-A : 1\r\n"), 400),
    case("htab-before-colon", head(b"X-A\t: 1\r\n"), 400),
    case("empty-name", head(b": 1\r\n"), 400),
    case("space-inside-name", head(b"X A: 1\r\n"), 400),
    case("name-not-a-token-at", head(b"X@A: 1\r\n"), 400),
    case("name-not-a-token-paren", head(b"X(A): 1\r\n"), 400),
    case("name-not-a-token-slash", head(b"X/A: 1\r\n"), 400),
    case("name-non-ascii", head(b"X\xc3\xa9: 1\r\n"), 400),
    case("name-nul", head(b"X\x00A: 1\r\n"), 400),
    case("line-without-colon", head(b"XA\r\n"), 400),
    case("value-nul", head(b"X-A: a\x00b\r\n"), 400),
    case("value-control", head(b"X-A: a\x01b\r\n"), 400),
    case("value-del", head(b"X-A: a\x7fb\r\n"), 400),
    case("value-bare-cr", head(b"X-A: a\rb\r\n"), 400),
    case("value-bare-lf", head(b"X-A: a\nb\r\n"), 400),
    case("obs-fold-sp", head(b"X-A: a\r\n b\r\n"), 400),
    case("obs-fold-htab", head(b"X-A: a\r\n\tb\r\n"), 400),
    case("whitespace-before-first-field-sp", LINE + b" Host: x\r\n\r\n", 400),
    case("whitespace-before-first-field-htab", LINE + b"\tHost: x\r\n\r\n", 400),
    case("bare-cr-ends-a-field", LINE + b"Host: x\rX-A: 1\r\n\r\n", 400),
    case("bare-cr-ends-the-head", LINE + b"Host: x\r\n\rGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    case("bare-lf-ends-the-request-line", b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400),
    case("bare-lf-ends-a-field", LINE + b"Host: x\nX-A: 1\r\n\r\n", 400),
    case("bare-lf-ends-the-head", LINE + b"Host: x\r\n\n", 400),
    case("bare-lf-everywhere", b"GET / HTTP/1.1\nHost: x\n\n", 400),
]


@pytest.mark.parametrize(("data", "status"), REJECTED)
def test_header_field_rejected(run, data: bytes, status: int) -> None:
    assert_rejected(run, data, status)


@pytest.mark.parametrize(
    ("field", "name", "value"),
    [
        (b"X-A: caf\xc3\xa9 \xff\r\n", b"x-a", b"caf\xc3\xa9 \xff"),
        (b"X-A: a\tb\r\n", b"x-a", b"a\tb"),
        (b"X-A: \t  v w \t \r\n", b"x-a", b"v w"),
        (b"X-A:v\r\n", b"x-a", b"v"),
        (b"X-A:\r\n", b"x-a", b""),
        (b"X-A:   \r\n", b"x-a", b""),
        (b"!#$%&'*+-.^_`|~09azAZ: t\r\n", b"!#$%&'*+-.^_`|~09azaz", b"t"),
    ],
    ids=["obs-text", "htab-inside", "ows-trimmed", "no-ows", "empty", "only-ows", "every-token-char"],
)
def test_header_field_accepted(run, field: bytes, name: bytes, value: bytes) -> None:
    [seen] = assert_served(run, head(field))
    assert seen.header(name) == [value]


def test_repeated_fields_keep_their_order(run) -> None:
    [seen] = assert_served(run, head(b"X-A: 1\r\nX-B: 2\r\nx-a: 3\r\n"))
    assert seen.header(b"x-a") == [b"1", b"3"]
    assert [k for k, _ in seen.headers] == [b"host", b"x-a", b"x-b", b"x-a"]
