"""The load scenarios: what is requested, how hard, and what a correct answer looks like.

Each server is checked with one request before any load (same payload everywhere);
a server that answers wrongly is reported and not loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from blazeasgi.benchprocess import Reply
from blazeasgi.wrk import lua_script

from .apps.common import BROWSER_HEADERS, DOWNLOAD_SIZE, HELLO, PLAINTEXT, SECURITY_HEADERS

ECHO_BODY = b"x" * 4096
PIPELINE_DEPTH = 16


def _expect_body(expected: bytes, content_type: str) -> Callable[[Reply], str | None]:
    def check(reply: Reply) -> str | None:
        if reply.status != 200:
            return f"status {reply.status}, expected 200"
        if reply.body != expected:
            return f"body {reply.body[:60]!r}, expected {expected[:60]!r}"
        ctype = reply.header("content-type") or ""
        if not ctype.startswith(content_type):
            return f"content-type {ctype!r}, expected {content_type}"
        return None

    return check


def check_hello(reply: Reply) -> str | None:
    problem = _expect_body(HELLO, "text/plain")(reply)
    if problem:
        return problem
    missing = [name for name, value in SECURITY_HEADERS.items() if reply.header(name) != value]
    return f"security headers missing or wrong: {', '.join(missing)}" if missing else None


def check_json(reply: Reply) -> str | None:
    if reply.status != 200:
        return f"status {reply.status}, expected 200"
    try:
        data = json.loads(reply.body)
    except ValueError:
        return f"body is not JSON: {reply.body[:60]!r}"
    if data != {"message": "Hello, World!"}:
        return f"JSON {data!r}, expected {{'message': 'Hello, World!'}}"
    if not (reply.header("content-type") or "").startswith("application/json"):
        return f"content-type {reply.header('content-type')!r}, expected application/json"
    return None


def check_download(reply: Reply) -> str | None:
    if reply.status != 200:
        return f"status {reply.status}, expected 200"
    if len(reply.body) != DOWNLOAD_SIZE or reply.body.strip(b"x"):
        return f"body of {len(reply.body)} bytes, expected {DOWNLOAD_SIZE} bytes of 'x'"
    return None


def check_item(reply: Reply) -> str | None:
    if reply.status != 200:
        return f"status {reply.status}, expected 200"
    try:
        data = json.loads(reply.body)
    except ValueError:
        return f"body is not JSON: {reply.body[:60]!r}"
    expected = {"id": 42, "name": "item 42", "price": 12.5, "tags": ["bench", "fastapi"]}
    return None if data == expected else f"JSON {data!r}, expected {expected!r}"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    path: str
    connections: tuple[int, ...]
    quick_connections: tuple[int, ...]
    check: Callable[[Reply], str | None]
    method: str = "GET"
    body: bytes | None = None
    content_type: str | None = None
    pipeline: int = 1
    #: Extra request header fields (``Connection: close``).
    headers: tuple[tuple[str, str], ...] = ()
    #: HTTP/1.0 requests (a new connection per request unless keep-alive is asked).
    http10: bool = False
    #: HTTP/2 with prior knowledge (h2c), driven by h2load instead of wrk.
    http2: bool = False
    #: h2load's ``-m``: requests in flight on each HTTP/2 connection.
    streams: int = 1
    #: HTTP/2 in quick mode: this many requests (``-n``) in one run, no warm-up, instead
    #: of timed runs (the CI smoke run stays a few seconds per server).
    quick_requests: int = 0
    #: The route it requests, when it shares one with another scenario (the apps'
    #: APP_ROUTES name routes by their HTTP/1.1 scenario).
    route: str = ""

    @property
    def route_name(self) -> str:
        return self.route or self.name

    @property
    def protocol(self) -> str:
        return "h2c" if self.http2 else "http/1.1"

    def request_headers(self) -> tuple[tuple[str, str], ...]:
        """Extra request header fields, with the content type when there is a body."""
        ctype = (("Content-Type", self.content_type),) if self.content_type else ()
        return (*self.headers, *ctype)

    def script(self) -> str:
        headers = dict(self.request_headers())
        return lua_script(self.method, self.body, headers or None, self.pipeline, self.http10)


SCENARIOS: list[Scenario] = [
    Scenario("hello", "Hello world + 5 security headers", "/", (100, 1000, 10000), (100,), check_hello),
    # The same route asked as a browser asks for a page: 16 header fields, 914 bytes,
    # where wrk's own request has 3 (every field is work for a server's parser).
    Scenario(
        "hello-browser",
        "Hello world, a browser-sized request (16 header fields, 914 bytes)",
        "/",
        (100, 1000),
        (100,),
        check_hello,
        headers=BROWSER_HEADERS,
        route="hello",
    ),
    # A new connection per request: a default nginx upstream (HTTP/1.0 and
    # Connection: close), health checks, scripted clients.
    Scenario(
        "hello-close",
        "Hello world, a new connection per request (Connection: close)",
        "/",
        (100, 1000),
        (100,),
        check_hello,
        headers=(("Connection", "close"),),
    ),
    Scenario(
        "hello-http10",
        "Hello world, a new connection per request (HTTP/1.0)",
        "/",
        (100,),
        (100,),
        check_hello,
        http10=True,
    ),
    Scenario(
        "plaintext",
        f"Plaintext, pipelined {PIPELINE_DEPTH} deep",
        "/plaintext",
        (256,),
        (256,),
        _expect_body(PLAINTEXT, "text/plain"),
        pipeline=PIPELINE_DEPTH,
    ),
    Scenario("json", "JSON serialisation", "/json", (100,), (100,), check_json),
    Scenario(
        "echo",
        "POST echo, 4 KiB body",
        "/echo",
        (100,),
        (100,),
        _expect_body(ECHO_BODY, "application/octet-stream"),
        method="POST",
        body=ECHO_BODY,
        content_type="application/octet-stream",
    ),
    Scenario("download", "1 MiB streamed download", "/download", (32,), (32,), check_download),
    Scenario("items", "FastAPI path param + pydantic response", "/items/42", (100,), (100,), check_item),
]


def _h2_hello(streams: int) -> Scenario:
    return Scenario(
        f"h2-hello-m{streams}",
        f"HTTP/2 (h2c) hello world, {streams} stream{'s' if streams > 1 else ''} per connection",
        "/",
        (100, 1000),
        (100,) if streams == 10 else (),
        check_hello,
        http2=True,
        streams=streams,
        quick_requests=5000,
        route="hello",
    )


#: HTTP/2 through h2load, h2c with prior knowledge (benchmarks/h2load.py). Quick mode
#: runs only h2-hello-m10 (unless --connections names levels), for a fixed number of
#: requests: a few seconds per server, most of it the server's start.
H2_SCENARIOS: list[Scenario] = [
    *(_h2_hello(streams) for streams in (1, 10, 100)),
    Scenario(
        "h2-download",
        "HTTP/2 (h2c) 1 MiB streamed download, 1 stream per connection",
        "/download",
        (32,),
        (),
        check_download,
        http2=True,
        quick_requests=32,
        route="download",
    ),
    Scenario(
        "h2-echo",
        "HTTP/2 (h2c) POST echo, 4 KiB body, 1 stream per connection",
        "/echo",
        (100,),
        (),
        _expect_body(ECHO_BODY, "application/octet-stream"),
        method="POST",
        body=ECHO_BODY,
        content_type="application/octet-stream",
        http2=True,
        quick_requests=2000,
        route="echo",
    ),
]
SCENARIOS += H2_SCENARIOS

BY_NAME = {s.name: s for s in SCENARIOS}
