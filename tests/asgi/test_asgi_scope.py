"""The ASGI ``http`` scope as an application sees it."""

from __future__ import annotations

import socket
from typing import Any

import pytest

Scope = dict[str, Any]


def recording_app(scopes: list[Scope], lifespan_state: dict[str, Any] | None = None) -> Any:
    """A raw ASGI app that records each http scope and answers 200 "ok"."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if lifespan_state is not None:
                        scope["state"].update(lifespan_state)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        scopes.append(scope)
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, tuple[str, int]]:
    """Send ``data`` (which should ask for Connection: close); read until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        local = sock.getsockname()
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out, (local[0], local[1])


def get(port: int, target: str, extra: bytes = b"") -> tuple[bytes, tuple[str, int]]:
    head = b"GET %s HTTP/1.1\r\nHost: example.org\r\n" % target.encode()
    request = head + extra + b"Connection: close\r\n\r\n"
    return raw_exchange(port, request)


def test_basic_scope_fields(serve) -> None:
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes))
    out, local = get(srv.port, "/a/b?x=1&y=%20z", b"X-Foo: One\r\nX-Foo: Two\r\nACCEPT: */*\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.endswith(b"\r\n\r\nok")
    [scope] = scopes
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert isinstance(scope["asgi"].get("spec_version"), str)
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/a/b"
    assert scope["raw_path"] == b"/a/b"
    assert scope["query_string"] == b"x=1&y=%20z"
    assert scope["root_path"] == ""
    # Lower-cased names as bytes, values untouched, request order, duplicates kept.
    assert scope["headers"] == [
        (b"host", b"example.org"),
        (b"x-foo", b"One"),
        (b"x-foo", b"Two"),
        (b"accept", b"*/*"),
        (b"connection", b"close"),
    ]
    assert all(type(n) is bytes and type(v) is bytes for n, v in scope["headers"])
    assert tuple(scope["client"]) == local
    assert tuple(scope["server"]) == ("127.0.0.1", srv.port)


def test_server_is_the_local_address_behind_a_wildcard_listener(serve) -> None:
    # A listener bound to one address gives its connections that address without
    # asking each socket (engine/serverstate.py); bound to every address (0.0.0.0),
    # each connection must still say which one it came in on, never "0.0.0.0".
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes), bind="0.0.0.0")
    out, local = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert tuple(scopes[0]["client"]) == local
    assert tuple(scopes[0]["server"]) == ("127.0.0.1", srv.port)


def test_non_ascii_header_value_is_raw_bytes(serve) -> None:
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes))
    out, _ = get(srv.port, "/", b"X-Name: caf\xe9 \x80\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert (b"x-name", b"caf\xe9 \x80") in scopes[0]["headers"]


def test_http_10_and_method(serve) -> None:
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes))
    out, _ = raw_exchange(srv.port, b"DELETE /thing HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert scopes[0]["http_version"] == "1.0"
    assert scopes[0]["method"] == "DELETE"


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query"),
    [
        ("/caf%C3%A9", "/café", b"/caf%C3%A9", b""),
        ("/a%20b/c%2Fd?q=%C3%A9&x", "/a b/c/d", b"/a%20b/c%2Fd", b"q=%C3%A9&x"),
        ("/plain?", "/plain", b"/plain", b""),
        ("/%7Euser/", "/~user/", b"/%7Euser/", b""),
        ("/a%zz/%", "/a%zz/%", b"/a%zz/%", b""),  # not percent-encoding: left alone
        ("/%FF", "/\ufffd", b"/%FF", b""),  # not UTF-8: replaced, like uvicorn
        ("/a+b?c+d", "/a+b", b"/a+b", b"c+d"),
    ],
)
def test_path_decoding(serve, target: str, path: str, raw_path: bytes, query: bytes) -> None:
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes))
    out, _ = get(srv.port, target)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    scope = scopes[0]
    assert scope["path"] == path
    assert scope["raw_path"] == raw_path
    assert scope["query_string"] == query


def test_absolute_form_target(serve) -> None:
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes))
    out, _ = get(srv.port, "http://example.org/p/q?z=1")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert scopes[0]["path"] == "/p/q"
    assert scopes[0]["raw_path"] == b"/p/q"
    assert scopes[0]["query_string"] == b"z=1"


def test_root_path_applied_like_uvicorn(serve) -> None:
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes), root_path="/api")
    out, _ = get(srv.port, "/users/caf%C3%A9?x=1")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    scope = scopes[0]
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/users/café"
    assert scope["raw_path"] == b"/api/users/caf%C3%A9"
    assert scope["query_string"] == b"x=1"


def test_each_request_gets_its_own_scope_on_keep_alive(serve) -> None:
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        local = sock.getsockname()
        sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        out = b""
        while not out.endswith(b"ok"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed after the first response"
            out += chunk
        sock.sendall(b"GET /two?b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while chunk := sock.recv(65536):
            out += chunk
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert [s["path"] for s in scopes] == ["/one", "/two"]
    assert [s["query_string"] for s in scopes] == [b"", b"b"]
    assert scopes[0] is not scopes[1]
    assert scopes[0]["headers"] == [(b"host", b"x")]
    assert tuple(scopes[0]["client"]) == tuple(scopes[1]["client"]) == (local[0], local[1])


def test_state_copied_from_lifespan(serve) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await recording_app([], {"db": "connected", "counter": 0})(scope, receive, send)
            return
        state = scope["state"]
        seen.append(dict(state))
        state["counter"] += 1
        state["leak"] = "from request"
        del state["db"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app, lifespan="on")
    for _ in range(2):
        out, _ = get(srv.port, "/")
        assert out.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert seen == [{"db": "connected", "counter": 0}] * 2


def test_state_empty_without_lifespan(serve) -> None:
    scopes: list[Scope] = []
    srv = serve(recording_app(scopes), lifespan="off")
    get(srv.port, "/")
    assert scopes[0].get("state", {}) == {}
