"""RFC 9112 §3 and §2.3: the request line.

request-line = method SP request-target SP HTTP-version; HTTP-version = "HTTP/" DIGIT "." DIGIT.

Choices (strict):
* Exactly one SP between the parts: 400 otherwise. §3 lets a recipient split on any
  whitespace run; a server that does so reads a different target than a proxy that
  does not.
* A well-formed version other than 1.0/1.1 is 505 (HTTP/0.9's one-line request too);
  a malformed one is 400.
* Targets: origin-form must start with "/"; absolute-form (http/https with a
  non-empty host and no userinfo, RFC 9110 §4.2.1, §4.2.4) is reduced to its path;
  "*" only with OPTIONS; authority-form only with CONNECT and CONNECT only with
  authority-form (§3.2.3); no fragment, no control or non-ASCII bytes (§3.2).
* Empty lines before the request line are ignored (§2.2 SHOULD).

Unknown methods (400), lowercase methods, HTTP/1.2 and HTTP/2.0, a relative target,
absolute-form reduction and malformed versions with trailing bytes are in
test_engine_limits.py.
"""

from __future__ import annotations

import pytest

from ..helpers.rfc9112 import assert_rejected, assert_served, case, exchange

HOST = b"\r\nHost: x\r\n\r\n"


def line(text: bytes) -> bytes:
    return text + HOST


REJECTED = [
    # separators
    case("two-sp-after-method", line(b"GET  /a HTTP/1.1"), 400),
    case("two-sp-before-version", line(b"GET /a  HTTP/1.1"), 400),
    case("three-sp-after-method", line(b"GET   /a HTTP/1.1"), 400),
    case("htab-after-method", line(b"GET\t/a HTTP/1.1"), 400),
    case("htab-before-version", line(b"GET /a\tHTTP/1.1"), 400),
    case("sp-before-method", line(b" GET /a HTTP/1.1"), 400),
    case("no-target", line(b"GET HTTP/1.1"), 400),
    # version
    case("lowercase-http", line(b"GET /a http/1.1"), 400),
    case("dash-not-slash", line(b"GET /a HTTP-1.1"), 400),
    case("two-digit-major", line(b"GET /a HTTP/10.0"), 400),
    case("two-digit-minor", line(b"GET /a HTTP/1.10"), 400),
    case("leading-zero-major", line(b"GET /a HTTP/01.1"), 400),
    case("no-dot", line(b"GET /a HTTP/11"), 400),
    case("http-0.9", line(b"GET /a HTTP/0.9"), 505),
    case("http-0.9-simple-request", b"GET /a\r\n\r\n", 505),
    case("http-3.0", line(b"GET /a HTTP/3.0"), 505),
    # method
    case("method-not-a-token", line(b"GE(T /a HTTP/1.1"), 400),
    case("method-with-nul", line(b"G\x00ET /a HTTP/1.1"), 400),
    # target forms
    case("query-without-path", line(b"GET ?a HTTP/1.1"), 400),
    case("asterisk-with-get", line(b"GET * HTTP/1.1"), 400),
    case("authority-form-with-get", line(b"GET example.com:443 HTTP/1.1"), 400),
    case("connect-with-origin-form", line(b"CONNECT /a HTTP/1.1"), 400),
    case("absolute-form-other-scheme", line(b"GET ftp://x/a HTTP/1.1"), 400),
    case("absolute-form-empty-host", line(b"GET http:///a HTTP/1.1"), 400),
    case("absolute-form-userinfo", line(b"GET http://user@x/a HTTP/1.1"), 400),
    case("fragment", line(b"GET /a#frag HTTP/1.1"), 400),
    # bytes in the target
    case("target-nul", line(b"GET /a\x00b HTTP/1.1"), 400),
    case("target-control", line(b"GET /a\x01b HTTP/1.1"), 400),
    case("target-del", line(b"GET /a\x7fb HTTP/1.1"), 400),
    case("target-htab", line(b"GET /a\tb HTTP/1.1"), 400),
    case("target-bare-cr", line(b"GET /a\rb HTTP/1.1"), 400),
    case("target-bare-lf", line(b"GET /a\nb HTTP/1.1"), 400),
    case("target-non-ascii", line(b"GET /caf\xc3\xa9 HTTP/1.1"), 400),
]


@pytest.mark.parametrize(("data", "status"), REJECTED)
def test_request_line_rejected(run, data: bytes, status: int) -> None:
    assert_rejected(run, data, status)


def test_options_asterisk_reaches_the_app_as_asterisk(run) -> None:
    [seen] = assert_served(run, line(b"OPTIONS * HTTP/1.1"))
    assert (seen.method, seen.raw_path) == ("OPTIONS", b"*")


@pytest.mark.parametrize("method", ["PROPFIND", "PURGE", "MKCOL"])
def test_registered_methods_other_than_the_usual_reach_the_app(run, method: str) -> None:
    [seen] = assert_served(run, line(method.encode() + b" /a HTTP/1.1"))
    assert seen.method == method


@pytest.mark.parametrize(
    "prefix",
    [b"\r\n", b"\r\n\r\n"],
    ids=["one-empty-line", "two-empty-lines"],
)
def test_empty_lines_before_the_request_line_are_ignored(run, prefix: bytes) -> None:
    [seen] = assert_served(run, prefix + line(b"GET /a HTTP/1.1"))
    assert seen.path == "/a"


@pytest.mark.parametrize(
    ("target", "raw_path", "query"),
    [
        (b"/a%20b?x=%41", b"/a%20b", b"x=%41"),
        (b"//double", b"//double", b""),
        (b"/a?b?c", b"/a", b"b?c"),
    ],
    ids=["percent-encoded", "double-slash", "second-question-mark"],
)
def test_origin_form_reaches_the_app_unchanged(run, target: bytes, raw_path: bytes, query: bytes) -> None:
    [seen] = assert_served(run, line(b"GET " + target + b" HTTP/1.1"))
    assert (seen.raw_path, seen.query_string) == (raw_path, query)


SPACED = b"POST /a HTTP/1.1\r\nHost: x\r\nX-Two:  a  b  \r\nContent-Length: 6\r\n\r\nab  cd"


@pytest.mark.parametrize("step", [None, 1, 5, 29, 40])
def test_two_sp_outside_the_request_line_are_left_alone(run, step: int | None) -> None:
    """Runs of SP in a field value (OWS) and in a body ending mid-line, with the
    next request right behind it, are no request line's."""
    first, second = assert_served(run, SPACED + SPACED, n=2, steps=(step,))
    assert first.header(b"x-two") == [b"a  b"] and (first.body, second.body) == (b"ab  cd", b"ab  cd")


@pytest.mark.parametrize("step", [None, 1, 5, 40])
def test_two_sp_in_a_pipelined_request_line_are_rejected(run, step: int | None) -> None:
    result = exchange(run, SPACED + b"GET /b  HTTP/1.1\r\nHost: x\r\n\r\n", want=2, step=step)
    assert [r.status for r in result.final] == [200, 400] and result.closed
    assert [s.path for s in result.seen] == ["/a"]


@pytest.mark.parametrize("at", [0, 1], ids=["after-target", "between-the-sp"])
def test_two_sp_split_over_reads_after_a_long_read_are_rejected(run, at: int) -> None:
    """A long read ends inside the request line, the next one starts with SP."""
    data = line(b"GET /" + b"a" * 64 + b"  HTTP/1.1")
    result = exchange(run, data, want=1, step=data.index(b"  ") + at)
    assert [r.status for r in result.final] == [400] and result.seen == []
