"""Less travelled paths: app mistakes, proxies, HTTP/1.0, backend selection."""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from blazeasgi import App
from blazeasgi.websocket import WebSocket, WebSocketDisconnect
from blazeasgi.websocket.handshake import backend

from ..helpers.websocket import FrameReader, asgi_echo, read_head, read_response, request


def ws_connect(port: int, path: str = "/ws", **kwargs: Any) -> Any:
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 5)
    return connect(f"ws://127.0.0.1:{port}{path}", **kwargs)


def test_asgi_protocol_mistakes_raise_runtime_errors(serve, run) -> None:
    errors: list[str] = []
    done = threading.Event()

    async def expect_error(send: Any, message: dict[str, Any]) -> None:
        try:
            await send(message)
        except (RuntimeError, ValueError) as exc:
            errors.append(str(exc).split(":")[0])
        else:
            errors.append("no error")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await expect_error(send, {"type": "websocket.send", "text": "too early"})
        await send({"type": "websocket.accept"})
        await expect_error(send, {"type": "websocket.accept"})
        await expect_error(send, {"type": "websocket.send"})
        await expect_error(send, {"type": "websocket.close", "code": 1005})
        await send({"type": "websocket.send", "bytes": b"still fine"})
        await send({"type": "websocket.close", "code": 1000})
        await expect_error(send, {"type": "websocket.send", "text": "after close"})
        done.set()

    srv = serve(app, lifespan="off")

    async def go() -> None:
        async with ws_connect(srv.port) as ws:
            assert await ws.recv() == b"still fine"
            with pytest.raises(ConnectionClosed):
                await ws.recv()

    run(go())
    assert done.wait(5)
    assert "no error" not in errors
    assert len(errors) == 5


def test_denial_response_mistakes(serve, run) -> None:
    errors: list[str] = []
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "websocket.http.response.start", "status": 1000})
        except RuntimeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        try:
            await send({"type": "websocket.accept"})
        except RuntimeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.http.response.body", "body": b"gone"})
        try:
            await send({"type": "websocket.http.response.body", "body": b"more"})
        except RuntimeError as exc:
            errors.append(str(exc))
        done.set()

    srv = serve(app, lifespan="off")
    with srv.connect() as sock:
        sock.sendall(request())
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 404 ")
    assert response.endswith(b"\r\n\r\ngone")
    assert done.wait(5)
    assert len(errors) == 3


def test_proxy_headers_from_a_trusted_proxy_set_scheme_and_client(serve, run) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.close"})

    srv = serve(app, lifespan="off")  # 127.0.0.1 is trusted by default, as under uvicorn
    with srv.connect() as sock:
        sock.sendall(request(X_Forwarded_Proto="https", X_Forwarded_For="203.0.113.7"))
        assert read_response(sock).startswith(b"HTTP/1.1 403 ")
    assert scopes[0]["scheme"] == "wss"
    assert scopes[0]["client"][0] == "203.0.113.7"


def test_http_10_upgrade_is_refused(serve) -> None:
    srv = serve(asgi_echo)
    with srv.connect() as sock:
        sock.sendall(request().replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        response = read_response(sock)
    assert not response.startswith(b"HTTP/1.1 101")


def test_client_leaving_before_a_late_accept_is_a_disconnect(serve) -> None:
    import asyncio

    events: list[Any] = []
    left = threading.Event()
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        events.append(await receive())
        await asyncio.get_running_loop().run_in_executor(None, left.wait, 5)  # a slow auth check
        try:
            await send({"type": "websocket.accept"})
            events.append(await receive())
        except OSError:
            events.append("send raised")  # also acceptable: the server noticed first
        done.set()

    srv = serve(app, lifespan="off")
    sock = srv.connect()
    sock.sendall(request())
    sock.close()
    left.set()
    assert done.wait(5)
    assert events[0] == {"type": "websocket.connect"}
    assert events[1] == "send raised" or events[1]["type"] == "websocket.disconnect"


def test_native_request_facts_and_type_checks(serve, run) -> None:
    seen: list[Any] = []
    done = threading.Event()
    app = App()

    @app.websocket("/facts/{name}")
    async def facts(ws: WebSocket) -> None:
        seen.append((ws.path, ws.raw_path, ws.query_string, ws.scheme, ws.client is not None, ws.accepted))
        await ws.accept(headers=[(b"x-extra", b"1")])
        seen.append(ws.accepted)
        for receive in (ws.receive_bytes, ws.receive_text):
            try:
                await receive()
            except TypeError as exc:
                seen.append(str(exc))
        await ws.send_json({"ok": True}, binary=True)
        try:
            await ws.accept()
        except RuntimeError:
            seen.append("accept twice")
        try:
            await ws.receive()
        except WebSocketDisconnect as exc:
            seen.append(exc.code)
        try:
            await ws.send_text("late")
        except WebSocketDisconnect:
            seen.append("send after close")
        done.set()

    srv = serve(app)

    async def go() -> None:
        async with ws_connect(srv.port, "/facts/a%20b?q=1") as ws:
            assert ws.response.headers["x-extra"] == "1"
            await ws.send("text, not bytes")
            await ws.send(b"bytes, not text")
            assert await ws.recv() == b'{"ok":true}'

    run(go())
    assert done.wait(5)
    assert seen[0] == ("/facts/a b", b"/facts/a%20b", b"q=1", "ws", True, False)
    assert seen[1] is True
    assert seen[2:4] == [
        "expected a binary message, got a text one",
        "expected a text message, got a binary one",
    ]
    assert seen[4:] == ["accept twice", 1000, "send after close"]


def test_frames_after_a_full_queue_at_accept_are_kept(serve) -> None:
    """Many frames right behind the handshake: reading stays paused until the app reads."""
    from ..helpers.websocket import frame

    srv = serve(asgi_echo, ws_max_queue=2)
    with srv.connect() as sock:
        sock.sendall(request() + b"".join(frame(1, b"m%d" % i) for i in range(10)))
        _, rest = read_head(sock)
        reader = FrameReader(sock, rest)
        assert [reader.next() for _ in range(10)] == [(1, b"m%d" % i) for i in range(10)]


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        backend("bogus")
    assert backend("none") is None
    assert backend("auto") == "websockets"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "websockets" else real(name, *a)
    )
    backend.cache_clear()
    try:
        assert backend("auto") == "wsproto"
        assert backend("websockets") is None  # named but missing: upgrades stay plain HTTP
    finally:
        monkeypatch.undo()
        backend.cache_clear()
