"""The native Request object, as a handler sees it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from blazeasgi import App, Request

from ..conftest import MockConnection


def build_app() -> App:
    app = App()

    @app.route("/echo/{name}", methods=["GET", "POST", "PUT"])
    def echo(request: Request) -> dict[str, Any]:
        return {
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path.decode("ascii"),
            "query_string": request.query_string.decode("latin-1"),
            "query_string_is_bytes": isinstance(request.query_string, bytes),
            "path_params": request.path_params,
            "client": list(request.client) if request.client else None,
            "client_is_tuple": isinstance(request.client, tuple),
        }

    @app.get("/query")
    def query(request: Request) -> dict[str, Any]:
        q = request.query_params
        return {
            "a": q["a"],
            "a_list": q.getlist("a"),
            "b": q.get("b"),
            "empty": q.get("empty"),
            "missing": q.get("missing", "default"),
            "keys": sorted(q),
            "len": len(q),
        }

    @app.get("/headers")
    def headers(request: Request) -> dict[str, Any]:
        h = request.headers
        return {
            "upper": h["X-TOKEN"],
            "lower": h["x-token"],
            "mixed": h.get("X-Token"),
            "multi": h.getlist("x-multi"),
            "multi_first": h["x-multi"],
            "has_token": "X-Token" in h,
            "has_nope": "x-nope" in h,
            "nope": h.get("x-nope"),
            "nope_list": h.getlist("x-nope"),
        }

    @app.post("/body")
    async def body(request: Request) -> dict[str, Any]:
        first = await request.body()
        second = await request.body()
        return {
            "len": len(first),
            "sha256": hashlib.sha256(first).hexdigest(),
            "same": first == second,
        }

    @app.post("/json")
    async def json_body(request: Request) -> dict[str, Any]:
        data = await request.json()
        return {"got": data, "again": await request.json()}

    @app.post("/stream")
    async def stream(request: Request) -> dict[str, Any]:
        digest = hashlib.sha256()
        total = 0
        chunks = 0
        async for chunk in request.stream():
            assert isinstance(chunk, bytes)
            digest.update(chunk)
            total += len(chunk)
            chunks += 1
        return {"len": total, "sha256": digest.hexdigest(), "chunks": chunks}

    @app.post("/body-then-stream")
    async def body_then_stream(request: Request) -> dict[str, Any]:
        body = await request.body()
        streamed = b"".join([c async for c in request.stream()])
        return {"same": body == streamed, "len": len(streamed)}

    @app.post("/ignore-body")
    def ignore_body(request: Request) -> str:
        return "ignored"

    return app


@pytest.fixture
def client(serve: Any) -> Iterator[httpx.Client]:
    srv = serve(build_app())
    with httpx.Client(base_url=srv.url(""), timeout=20) as c:
        yield c


def test_method_path_query_client(client: httpx.Client) -> None:
    r = client.post("/echo/bob?x=1&y=two")
    data = r.json()
    assert data["method"] == "POST"
    assert data["path"] == "/echo/bob"
    assert data["raw_path"] == "/echo/bob"
    assert data["query_string"] == "x=1&y=two"
    assert data["query_string_is_bytes"] is True
    assert data["path_params"] == {"name": "bob"}
    assert data["client_is_tuple"] is True
    host, port = data["client"]
    assert host == "127.0.0.1"
    assert isinstance(port, int) and port > 0


def test_path_is_decoded_raw_path_is_not(client: httpx.Client) -> None:
    r = client.get("/echo/j%C3%BCrgen%20x?q=%20")
    data = r.json()
    assert data["path"] == "/echo/jürgen x"
    assert data["raw_path"] == "/echo/j%C3%BCrgen%20x"
    assert data["path_params"] == {"name": "jürgen x"}
    assert data["query_string"] == "q=%20"


def test_empty_query_string(client: httpx.Client) -> None:
    data = client.get("/echo/x").json()
    assert data["query_string"] == ""


def test_query_params(client: httpx.Client) -> None:
    r = client.get("/query?a=1&b=hello%20world&a=2&empty=&a=3")
    data = r.json()
    assert data["a"] == "3"  # last value
    assert data["a_list"] == ["1", "2", "3"]
    assert data["b"] == "hello world"
    assert data["empty"] == ""
    assert data["missing"] == "default"
    assert data["keys"] == ["a", "b", "empty"]
    assert data["len"] == 3


def test_query_params_plus_is_space(client: httpx.Client) -> None:
    # A raw '+' in the query means space (form encoding), like every framework.
    data = client.get(httpx.URL(client.base_url.join("/query"), query=b"a=x+y")).json()
    assert data["a"] == "x y"


def test_headers_case_insensitive_and_multi(serve: Any) -> None:
    srv = serve(build_app())
    with srv.connect() as sock:
        sock.sendall(
            b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Token: secret\r\n"
            b"X-Multi: one\r\nx-multi: two\r\nX-MULTI: three\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    got = json.loads(body)
    assert got == {
        "upper": "secret",
        "lower": "secret",
        "mixed": "secret",
        "multi": ["one", "two", "three"],
        "multi_first": "one",
        "has_token": True,
        "has_nope": False,
        "nope": None,
        "nope_list": [],
    }


def test_body_read_twice(client: httpx.Client) -> None:
    payload = os.urandom(300_000)
    r = client.post("/body", content=payload)
    assert r.json() == {
        "len": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "same": True,
    }


def test_empty_body(client: httpx.Client) -> None:
    r = client.post("/body")
    assert r.json() == {"len": 0, "sha256": hashlib.sha256(b"").hexdigest(), "same": True}


def test_json_body(client: httpx.Client) -> None:
    payload = {"name": "Zoë", "tags": ["a", "b"], "nested": {"n": 1.5, "ok": None}}
    r = client.post("/json", json=payload)
    assert r.json() == {"got": payload, "again": payload}


def test_invalid_json_body_is_500(client: httpx.Client) -> None:
    r = client.post("/json", content=b"{not json")
    assert r.status_code == 500


def _chunks(total: int, size: int, seed: bytes) -> Iterator[bytes]:
    block = hashlib.sha256(seed).digest() * (size // 32)
    sent = 0
    i = 0
    while sent < total:
        piece = (block[i % 7 :] + block[: i % 7])[: min(size, total - sent)]
        sent += len(piece)
        i += 1
        yield piece


def test_stream_chunked_upload_sha256(client: httpx.Client) -> None:
    total = 3 * 1024 * 1024 + 12345
    digest = hashlib.sha256()
    for piece in _chunks(total, 64 * 1024, b"upload"):
        digest.update(piece)
    r = client.post("/stream", content=_chunks(total, 64 * 1024, b"upload"))
    assert r.status_code == 200
    data = r.json()
    assert data["len"] == total
    assert data["sha256"] == digest.hexdigest()
    assert data["chunks"] >= 1


def test_stream_chunked_upload_body(client: httpx.Client) -> None:
    # body() on a chunked upload gets the de-chunked bytes too
    total = 2 * 1024 * 1024 + 7
    expected = b"".join(_chunks(total, 50_000, b"body"))
    r = client.post("/body", content=_chunks(total, 50_000, b"body"))
    assert r.json() == {
        "len": total,
        "sha256": hashlib.sha256(expected).hexdigest(),
        "same": True,
    }


def test_stream_content_length_upload(client: httpx.Client) -> None:
    payload = os.urandom(1_000_000)
    r = client.post("/stream", content=payload)
    data = r.json()
    assert data["len"] == len(payload)
    assert data["sha256"] == hashlib.sha256(payload).hexdigest()


def test_stream_after_body(client: httpx.Client) -> None:
    r = client.post("/body-then-stream", content=b"x" * 100_000)
    assert r.json() == {"same": True, "len": 100_000}


def test_unread_body_does_not_break_keep_alive(client: httpx.Client) -> None:
    assert client.post("/ignore-body", content=b"z" * 1000).text == "ignored"
    r = client.post("/body", content=b"after")
    assert r.json()["len"] == 5


def test_raw_chunked_upload_with_trailer_like_sizes(serve: Any) -> None:
    srv = serve(build_app())
    parts = [b"hello ", b"", b"chunked ", b"world"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"
    with srv.connect() as sock:
        sock.sendall(
            b"POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    got = json.loads(data.partition(b"\r\n\r\n")[2])
    expected = b"hello chunked world"
    assert got["len"] == len(expected)
    assert got["sha256"] == hashlib.sha256(expected).hexdigest()


def test_request_via_mock_connection(run: Any) -> None:
    async def go() -> bytes:
        conn = MockConnection(build_app(), date_header=False)
        conn.feed(b"PUT /echo/m%3Fx?k=v HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        return await conn.settle()

    out = run(go())
    data = json.loads(out.partition(b"\r\n\r\n")[2])
    assert data["method"] == "PUT"
    assert data["raw_path"] == "/echo/m%3Fx"
    assert data["path"] == "/echo/m?x"
    assert data["path_params"] == {"name": "m?x"}
    assert data["client"] == ["127.0.0.1", 40000]


def test_body_arriving_in_pieces_via_mock(run: Any) -> None:
    async def go() -> bytes:
        conn = MockConnection(build_app(), date_header=False)
        conn.feed(b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        first = await conn.settle()
        conn.feed(b"56789")
        return first + await conn.settle()

    out = run(go())
    data = json.loads(out.partition(b"\r\n\r\n")[2])
    assert data["len"] == 10
    assert data["sha256"] == hashlib.sha256(b"0123456789").hexdigest()


def test_request_repr_does_not_fail(run: Any) -> None:
    seen: list[str] = []
    app = App()

    @app.get("/r")
    def handler(request: Request) -> str:
        seen.append(repr(request))
        return "ok"

    async def go() -> bytes:
        conn = MockConnection(app, date_header=False)
        conn.feed(b"GET /r?a=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        return await conn.settle()

    assert run(go()).endswith(b"ok")
    assert "GET" in seen[0] and "/r?a=1" in seen[0]
