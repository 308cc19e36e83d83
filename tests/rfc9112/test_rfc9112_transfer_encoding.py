"""RFC 9112 §6.1, §6.3 and §7: Transfer-Encoding on requests.

Choices (strict where the RFC allows several):
* TE together with Content-Length is rejected with 400 (§6.3 allows processing by
  TE alone and closing; rejecting cannot be smuggled through).
* Chunked must be the final coding and applied once; anything else is 400 (§6.3 #4).
* A known-length body whose other codings the server does not implement: 501 (§6.1).
* Empty list elements in Transfer-Encoding are rejected with 400. RFC 9110 §5.6.1 asks
  recipients to skip empty elements, but in the one header that frames the body, an
  odd list is what smuggling tries; llhttp already rejects a trailing empty element.
* TE on an HTTP/1.0 request means faulty framing (§6.1: "MUST treat the message as if
  the framing is faulty"): 400 and close, not process-and-keep-alive.

Content-Length + TE, ``gzip``, ``chunked, gzip`` and ``gzip, chunked`` are covered in
test_engine_limits.py and not repeated here.
"""

from __future__ import annotations

import pytest

from ..helpers.rfc9112 import assert_rejected, assert_served, case

POST = b"POST / HTTP/1.1\r\nHost: x\r\n"
BODY = b"3\r\nabc\r\n0\r\n\r\n"


def te(value: bytes, body: bytes = BODY) -> bytes:
    return POST + b"Transfer-Encoding: " + value + b"\r\n\r\n" + body


REJECTED = [
    case("chunked-twice-in-list", te(b"chunked, chunked"), 400),
    case(
        "chunked-twice-in-two-lines",
        POST + b"Transfer-Encoding: chunked\r\n" + te(b"chunked")[len(POST) :],
        400,
    ),
    case(
        "chunked-then-gzip-in-two-lines",
        POST + b"Transfer-Encoding: chunked\r\n" + te(b"gzip")[len(POST) :],
        400,
    ),
    case("chunked-not-last-identity", te(b"chunked, identity"), 400),
    case("empty-value", te(b"", b""), 400),
    case("empty-element-trailing", te(b"chunked,"), 400),
    case(
        "empty-element-leading",
        te(b",chunked"),
        400,
    ),
    case("identity-alone", te(b"identity", b"abc"), 400),
    case("lookalike-xchunked", te(b"xchunked"), 400),
    case("quoted-chunked", te(b'"chunked"'), 400),
    case("chunked-with-parameter", te(b"chunked;q=1"), 400),
    case("nul-in-value", te(b"chunked\x00"), 400),
    case("obs-fold", te(b"\r\n chunked"), 400),
    case("space-before-colon", POST + b"Transfer-Encoding : chunked\r\n\r\n" + BODY, 400),
    case("unknown-coding-before-chunked", te(b"compress, chunked"), 501),
    case(
        "unknown-coding-before-chunked-in-two-lines",
        # RFC 9110 §5.3: field lines combine to "gzip, chunked": known length, unknown coding
        POST + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + BODY,
        501,
    ),
    case(
        "with-content-length-on-http10",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + BODY,
        400,
    ),
    case(
        "on-http10",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + BODY,
        400,
    ),
    case(
        "on-http10-keep-alive",
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        + b"GET /smuggled HTTP/1.0\r\n\r\n",
        400,
    ),
]


@pytest.mark.parametrize(("data", "status"), REJECTED)
def test_transfer_encoding_rejected(run, data: bytes, status: int) -> None:
    assert_rejected(run, data, status)


@pytest.mark.parametrize(
    "value",
    [b"CHUNKED", b"cHuNkEd", b"  chunked  "],
    ids=["uppercase", "mixed-case", "surrounding-ows"],
)
def test_chunked_is_case_insensitive_and_trimmed(run, value: bytes) -> None:
    """§7: coding names are case-insensitive; OWS around a field value is not part of it."""
    [seen] = assert_served(run, te(value))
    assert seen.body == b"abc"


def test_chunked_body_on_get_is_read_as_body(run) -> None:
    """A GET may carry a body; its chunks are body bytes, never a next request."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    data = b"GET /g HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    data += b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    [seen] = assert_served(run, data)
    assert (seen.path, seen.body) == ("/g", smuggled)
