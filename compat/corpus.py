"""The request corpus: what a client sends, identically, to uvicorn and to blazeasgi.

Three kinds of case:

* ``Http``: one request through httpx (keep-alive client, redirects not followed,
  gzip decoded by httpx, so the gzip header's timestamp never shows);
* ``Flow``: several httpx requests on one client whose *last* response is the one
  compared (session round trips, background task results, conditional requests);
* ``Raw``: bytes on a socket, for what httpx cannot say (HTTP/1.0, pipelining,
  chunked uploads, ``Expect: 100-continue``, odd request targets). The responses are
  parsed off the wire with their framing, and whether the server closed the
  connection afterwards is compared too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

ALL = frozenset({"fastapi", "starlette", "django"})
ASGI_ONLY = frozenset({"fastapi", "starlette"})

#: Small JSON answers are asked for uncompressed: Django pads gzip bodies with up to
#: 100 random bytes and keeps the compressed body only if it is smaller, so near
#: ~300 bytes whether a response is compressed at all is a coin toss per response.
IDENTITY = ("accept-encoding", "identity")

FIVE_MIB = bytes(range(256)) * (5 * 4096)
UPLOAD = (b"upload file content\r\n--not-a-boundary\r\n" * 8000)[:300_000]


@dataclass(frozen=True)
class Http:
    name: str
    method: str
    path: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None
    json: Any = None
    data: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    chunked: bool = False  # send ``content`` as a stream of chunks (no Content-Length)
    apps: frozenset[str] = ALL


@dataclass(frozen=True)
class Flow:
    name: str
    steps: Callable[[httpx.Client], httpx.Response]
    apps: frozenset[str] = ALL


@dataclass(frozen=True)
class Raw:
    name: str
    parts: list[bytes]  # sent in order; before each later part the runner waits for a 100 or 0.3 s
    methods: list[str]  # one per expected response (for HEAD framing)
    apps: frozenset[str] = ALL


Case = Http | Flow | Raw


def _chunks(data: bytes, size: int = 65536) -> Any:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _etag_round_trip(client: httpx.Client) -> httpx.Response:
    first = client.get("/file")
    return client.get("/file", headers={"if-none-match": first.headers.get("etag", '"none"')})


def _session(client: httpx.Client) -> httpx.Response:
    client.get("/session/set", params={"value": "hello session"})
    return client.get("/session/get")


def _background(client: httpx.Client) -> httpx.Response:
    client.get("/background", params={"value": "one"})
    client.get("/background", params={"value": "two"})
    return client.get("/background/result")


def _cookie_jar(client: httpx.Client) -> httpx.Response:
    client.get("/cookies")
    return client.get("/cookies")  # sends back a=1 and b="two words" as stored by httpx


CORPUS: list[Case] = [
    # -- routing, params, validation --------------------------------------------------------
    Http("json", "GET", "/json"),
    Http("head_json", "HEAD", "/json"),
    Http("item_params", "GET", "/items/42?q=a%20b&q=%C3%A9&limit=3"),
    Http("item_bad_path_param", "GET", "/items/abc"),
    Http("item_bad_query_param", "GET", "/items/1?limit=500"),
    Http("not_found", "GET", "/nope"),
    Http("method_not_allowed", "DELETE", "/json"),
    Http(
        "sync_endpoint_header",
        "GET",
        "/sync-items/7",
        headers=[("x-token", "secret")],
        apps=frozenset({"fastapi"}),
    ),
    Http("mount", "GET", "/sub/inner", apps=frozenset({"starlette"})),
    # -- bodies -------------------------------------------------------------------------------
    Http("json_body", "POST", "/items", json={"name": "widget", "price": 2.5, "tags": ["a", "b"]}),
    Http("json_body_invalid", "POST", "/items", json={"price": -1}),
    Http(
        "json_body_malformed",
        "POST",
        "/items",
        content=b"{not json",
        headers=[("content-type", "application/json")],
    ),
    Http(
        "form_urlencoded",
        "POST",
        "/form",
        headers=[IDENTITY],
        data={"name": "bob", "tags": ["x", "y"], "note": "café & more"},
    ),
    Http(
        "multipart_upload",
        "POST",
        "/upload",
        headers=[IDENTITY],
        data={"name": "bob"},
        files=[
            ("files", ("hello.txt", b"hello file\r\n--not-a-boundary", "text/plain")),
            ("files", ("big.bin", UPLOAD, "application/octet-stream")),
        ],
    ),
    Http("body_5mib", "POST", "/body", content=FIVE_MIB),
    Http("body_chunked_5mib", "POST", "/body", content=FIVE_MIB, chunked=True),
    Http("stream_body_chunked", "POST", "/stream-body", content=FIVE_MIB[:1_000_000], chunked=True),
    Http("download_8mib", "GET", "/download?size=8388608"),
    Http("empty_put", "PUT", "/body", content=b""),
    # -- cookies, redirects, errors ----------------------------------------------------------
    Http("cookies", "GET", "/cookies", headers=[("cookie", "a=x; b=y; other=z")]),
    Flow("cookies_round_trip", _cookie_jar),
    Http("redirect", "GET", "/redirect"),
    Http("redirect_absolute_301", "GET", "/redirect?to=https%3A%2F%2Fexample.com%2Fx%3Fy%3D1&status=301"),
    Http("exception_handler", "GET", "/teapot"),
    Http("http_exception", "GET", "/missing"),
    Http("unhandled_exception", "GET", "/crash"),
    Http("unhandled_exception_sync", "GET", "/sync-crash", apps=frozenset({"fastapi"})),
    Http("status_201", "GET", "/status/201"),
    Http("status_204", "GET", "/status/204"),
    Http("status_304", "GET", "/status/304"),
    Http("status_418", "GET", "/status/418"),
    # -- middleware ----------------------------------------------------------------------------
    Http("gzip", "GET", "/big", headers=[("accept-encoding", "gzip")]),
    Http("gzip_identity", "GET", "/big", headers=[("accept-encoding", "identity")]),
    Http(
        "cors_preflight",
        "OPTIONS",
        "/json",
        headers=[
            ("origin", "https://example.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-token"),
        ],
    ),
    Http("cors_simple", "GET", "/missing", headers=[("origin", "https://example.com")]),
    Http("cors_other_origin", "GET", "/json", headers=[("origin", "https://evil.example")]),
    Flow("session_round_trip", _session),
    # -- streaming, files, background, lifespan ----------------------------------------------
    Http("streaming_response", "GET", "/stream"),
    Http("server_sent_events", "GET", "/sse", headers=[("accept", "text/event-stream")]),
    Http("file", "GET", "/file", headers=[("accept-encoding", "identity")]),
    Http("file_head", "HEAD", "/file"),
    Http("file_range", "GET", "/file", headers=[("range", "bytes=100-199")]),
    Http("file_suffix_range", "GET", "/file", headers=[("range", "bytes=-100")]),
    Http("file_open_range", "GET", "/file", headers=[("range", "bytes=1048000-")]),
    Http("file_multi_range", "GET", "/file", headers=[("range", "bytes=0-9,20-29")]),
    Http("file_unsatisfiable_range", "GET", "/file", headers=[("range", "bytes=99999999-")]),
    Flow("file_if_none_match", _etag_round_trip),
    Flow("background_tasks", _background),
    Http("lifespan_state", "GET", "/state"),
    # -- headers, proxies, paths ------------------------------------------------------------------
    Http(
        "request_headers",
        "GET",
        "/headers",
        headers=[IDENTITY, ("x-custom", "a"), ("x-custom", "b"), ("x-empty", "")],
    ),
    Http(
        "proxy_headers",
        "GET",
        "/headers",
        headers=[IDENTITY, ("x-forwarded-for", "203.0.113.9, 127.0.0.1"), ("x-forwarded-proto", "https")],
    ),
    Http("unicode_path", "GET", "/paths/caf%C3%A9/%E2%9C%93?x=%C3%A9"),
    Http("encoded_slash_and_space", "GET", "/paths/a%2Fb%20c"),
    Http("invalid_percent_escape", "GET", "/paths/100%25/%zz"),
    Http("plus_and_reserved", "GET", "/paths/a+b;c=d?e=f+g&h=%26"),
    # -- what httpx cannot send ---------------------------------------------------------------
    Raw("http10_close", [b"GET /json HTTP/1.0\r\n\r\n"], ["GET"]),
    Raw("http10_keep_alive", [b"GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"], ["GET"]),
    Raw("http10_streaming", [b"GET /stream HTTP/1.0\r\n\r\n"], ["GET"]),
    Raw(
        "pipelined",
        [
            b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            b"HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        ],
        ["GET", "POST", "HEAD", "GET"],
    ),
    Raw(
        "chunked_upload",
        [
            b"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        ],
        ["POST"],
    ),
    Raw(
        "expect_100_continue",
        [
            b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
            b"hello world",
        ],
        ["POST", "POST"],
    ),
    Raw(
        "expect_100_continue_not_found",
        [
            b"POST /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        ],
        ["POST"],
    ),
    Raw("connection_close", [b"GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"], ["GET"]),
    Raw(
        "absolute_form_target",
        [b"GET http://t/json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"],
        ["GET"],
    ),
    Raw(
        "header_value_whitespace",
        [b"GET /headers HTTP/1.1\r\nHost: t\r\nX-Pad:   padded value  \t \r\nConnection: close\r\n\r\n"],
        ["GET"],
    ),
    Raw("missing_host_http11", [b"GET /json HTTP/1.1\r\nConnection: close\r\n\r\n"], ["GET"]),
    Raw("head_raw", [b"HEAD /file HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"], ["HEAD"]),
    Raw(
        "utf8_request_target",
        [b"GET /paths/caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"],
        ["GET"],
    ),
    Raw(
        "crash_closes_connection",
        [b"GET /crash HTTP/1.1\r\nHost: t\r\n\r\n"],
        ["GET"],
    ),
]


def cases_for(app: str) -> list[Case]:
    return [case for case in CORPUS if app in case.apps]
