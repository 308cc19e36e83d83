"""RFC 9112 §3.2 and RFC 9110 §7.2: Host.

"A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request
message that lacks a Host header field and to any request message that contains
more than one Host header field line or a Host header field with an invalid field
value." Host = uri-host [ ":" port ] (RFC 3986: IP-literal / IPv4address / reg-name,
port = *DIGIT). An empty Host is valid (a target URI without authority).

For absolute-form "the origin server MUST ignore the received Host header field (if
any) and instead use the host information of the request-target" (§3.2.2): the app
must see the target's authority as its Host.

Missing Host on 1.1, two different Hosts and two Hosts on 1.0 are in
test_engine_limits.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..helpers.rfc9112 import assert_rejected, assert_served, case

GET = b"GET / HTTP/1.1\r\n"


def host(value: bytes, line: bytes = GET) -> bytes:
    return line + b"Host: " + value + b"\r\n\r\n"


REJECTED = [
    case("repeated-same-value", GET + b"Host: x\r\nHost: x\r\n\r\n", 400),
    case("absolute-form-without-host", b"GET http://a.example/p HTTP/1.1\r\n\r\n", 400),
    case("space-inside", host(b"a b"), 400),
    case("slash", host(b"a/b"), 400),
    case("userinfo", host(b"user@a"), 400),
    case("port-not-digits", host(b"a:http"), 400),
    case("two-ports", host(b"a:1:2"), 400),
    case("unclosed-ip-literal", host(b"[::1"), 400),
    case("list-of-hosts", host(b"a, b"), 400),
    case("raw-non-ascii", host(b"caf\xc3\xa9.example"), 400),
    case("invalid-on-http10", host(b"a b", b"GET / HTTP/1.0\r\n"), 400),
]


@pytest.mark.parametrize(("data", "status"), REJECTED)
def test_host_rejected(run, data: bytes, status: int) -> None:
    assert_rejected(run, data, status)


@pytest.mark.parametrize(
    "value",
    [
        b"example.com",
        b"EXAMPLE.com:8080",
        b"127.0.0.1:80",
        b"[::1]:8000",
        b"xn--caf-dma.example",
        b"a%41b",
        b"",
    ],
    ids=["name", "name-port", "ipv4-port", "ipv6-port", "idna", "percent-encoded", "empty"],
)
def test_valid_host_accepted(run, value: bytes) -> None:
    [seen] = assert_served(run, host(value))
    assert seen.header(b"host") == [value]


def test_host_name_is_case_insensitive(run) -> None:
    [seen] = assert_served(run, GET + b"HOST: x\r\n\r\n")
    assert seen.header(b"host") == [b"x"]


def test_absolute_form_authority_wins_over_host(run) -> None:
    seen: Any = assert_served(run, b"GET http://a.example/p HTTP/1.1\r\nHost: b.example\r\n\r\n")
    assert seen[0].path == "/p"
    assert seen[0].header(b"host") == [b"a.example"]
