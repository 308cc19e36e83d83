"""The native WebSocket API (`@app.websocket`) seen from the real `websockets` client."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi import WebSocket as FastAPIWebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from blazeasgi import App, JSONResponse, PlainTextResponse, Request
from blazeasgi.websocket import WebSocket, WebSocketDisconnect

from ..helpers.websocket import asgi_echo


def ws_connect(port: int, path: str, **kwargs: Any) -> Any:
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 5)
    return connect(f"ws://127.0.0.1:{port}{path}", **kwargs)


class Seen:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.done = threading.Event()


def make_app(seen: Seen, fallback: Any = None) -> App:
    app = App(fallback=fallback)

    @app.get("/")
    def index(request: Request) -> PlainTextResponse:
        return PlainTextResponse("page")

    @app.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)
        seen.items.append((ws.close_code, ws.close_reason))
        seen.done.set()

    @app.websocket("/rooms/{room}/{n:int}")
    async def rooms(ws: WebSocket) -> None:
        seen.items.append(
            (ws.path_params, ws.query_params.get("who"), ws.headers.get("x-token"), ws.subprotocols)
        )
        await ws.accept(subprotocol="v2" if "v2" in ws.subprotocols else None)
        await ws.send_text(f"welcome to {ws.path_params['room']}")
        text = await ws.receive_text()
        data = await ws.receive_bytes()
        obj = await ws.receive_json()
        await ws.send_json({"text": text, "size": len(data), "obj": obj})
        await ws.send_bytes(data[::-1])
        await ws.close(4000, "see you")
        seen.done.set()

    @app.websocket("/disconnect")
    async def disconnect(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.receive()
        except WebSocketDisconnect as exc:
            seen.items.append((exc.code, exc.reason))
        seen.done.set()

    @app.websocket("/refuse")
    async def refuse(ws: WebSocket) -> None:
        pass  # never accepted: 403

    @app.websocket("/close-first")
    async def close_first(ws: WebSocket) -> None:
        await ws.close(1008)

    @app.websocket("/deny")
    async def deny(ws: WebSocket) -> JSONResponse:
        return JSONResponse({"error": "no token"}, status_code=401)

    @app.websocket("/broken")
    async def broken(ws: WebSocket) -> None:
        raise ValueError("broken before accept")

    @app.websocket("/broken-later")
    async def broken_later(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive()
        raise ValueError("broken after accept")

    return app


def test_echo_with_async_for_and_normal_close(serve, run) -> None:
    seen = Seen()
    srv = serve(make_app(seen))

    async def go() -> None:
        async with ws_connect(srv.port, "/echo") as ws:
            for message in ("one", b"two", "three" * 10000):
                await ws.send(message)
                assert await ws.recv() == message

    run(go())
    assert seen.done.wait(5)
    assert seen.items == [(1000, "")]


def test_request_facts_typed_helpers_and_close_code(serve, run) -> None:
    seen = Seen()
    srv = serve(make_app(seen))

    async def go() -> None:
        async with ws_connect(
            srv.port, "/rooms/lobby/7?who=ann", subprotocols=["v1", "v2"], additional_headers={"X-Token": "t"}
        ) as ws:
            assert ws.subprotocol == "v2"
            assert await ws.recv() == "welcome to lobby"
            await ws.send("hi")
            await ws.send(b"\x01\x02\x03")
            await ws.send('{"a": [1, 2]}')
            assert await ws.recv() == '{"text":"hi","size":3,"obj":{"a":[1,2]}}'
            assert await ws.recv() == b"\x03\x02\x01"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4000, "see you")

    run(go())
    assert seen.done.wait(5)
    assert seen.items[0] == ({"room": "lobby", "n": 7}, "ann", "t", ["v1", "v2"])


def test_receive_raises_disconnect_with_the_client_code(serve, run) -> None:
    seen = Seen()
    srv = serve(make_app(seen))

    async def go() -> None:
        async with ws_connect(srv.port, "/disconnect") as ws:
            await ws.send("x")
            await ws.close(1001, "tab closed")

    run(go())
    assert seen.done.wait(5)
    assert seen.items == [(1001, "tab closed")]


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/refuse", 403, b"Forbidden\n"),
        ("/close-first", 403, b"Forbidden\n"),
        ("/deny", 401, b'{"error":"no token"}'),
        ("/broken", 500, b"Internal Server Error\n"),
    ],
)
def test_refusals_are_http_responses(serve, run, path: str, status: int, body: bytes) -> None:
    srv = serve(make_app(Seen()))

    async def go() -> Any:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(srv.port, path):
                pass
        return info.value.response

    response = run(go())
    assert response.status_code == status
    assert response.body == body
    assert response.headers["connection"] == "close"


def test_handler_error_after_accept_closes_1011(serve, run) -> None:
    srv = serve(make_app(Seen()))

    async def go() -> None:
        async with ws_connect(srv.port, "/broken-later") as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1011

    run(go())


def test_http_routes_and_websocket_routes_side_by_side(serve, run) -> None:
    srv = serve(make_app(Seen()))
    assert httpx.get(srv.url("/")).text == "page"
    # A plain GET to a WebSocket path is not an upgrade: the HTTP router answers.
    assert httpx.get(srv.url("/echo")).status_code == 404

    async def go() -> Any:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(srv.port, "/nowhere"):
                pass
        return info.value.response

    assert run(go()).status_code == 404


def test_mixed_mode_native_and_fastapi_websockets(serve, run) -> None:
    api = FastAPI()

    @api.websocket("/api/ws")
    async def api_ws(websocket: FastAPIWebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("from fastapi: " + await websocket.receive_text())
        await websocket.close()

    srv = serve(make_app(Seen(), fallback=api))

    async def go() -> None:
        async with ws_connect(srv.port, "/echo") as ws:
            await ws.send("native")
            assert await ws.recv() == "native"
        async with ws_connect(srv.port, "/api/ws") as ws:
            await ws.send("hello")
            assert await ws.recv() == "from fastapi: hello"

    run(go())


def test_websocket_api_misuse_is_reported(serve, run) -> None:
    errors: list[BaseException] = []
    done = threading.Event()
    app = App()

    @app.websocket("/misuse")
    async def misuse(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except RuntimeError as exc:
            errors.append(exc)
        await ws.accept()
        try:
            await ws.send_text(b"not text")  # type: ignore[arg-type]
        except TypeError as exc:
            errors.append(exc)
        try:
            await ws.close(999)
        except ValueError as exc:
            errors.append(exc)
        await ws.close()
        done.set()

    srv = serve(app)

    async def go() -> None:
        async with ws_connect(srv.port, "/misuse") as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()

    run(go())
    assert done.wait(5)
    assert [type(e) for e in errors] == [RuntimeError, TypeError, ValueError]


def test_accepted_line_carries_the_access_log_fields(serve, run) -> None:
    """A handler formatting HTTP access fields also formats the WebSocket accept line."""
    import logging

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logging.Formatter("%(client)s %(method)s %(path)s %(status)d %(message)s"))
    access = logging.getLogger("blazeasgi.access")
    old_level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    try:
        seen = Seen()
        srv = serve(make_app(seen), access_log=True)

        async def go() -> None:
            async with ws_connect(srv.port, "/echo?x=1") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"

        run(go())
        assert seen.done.wait(5)
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    accepted = [r for r in records if "[accepted]" in r]
    assert len(accepted) == 1
    assert accepted[0].startswith("127.0.0.1:")
    assert " GET /echo?x=1 101 " in accepted[0]


@pytest.mark.parametrize("interface", ["native", "asgi"])
def test_access_lines_follow_the_access_log_format(serve, run, interface: str) -> None:
    """The accept and close lines of a WebSocket use --access-log-format, as HTTP lines do."""
    import logging

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    access = logging.getLogger("blazeasgi.access")
    old_level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    fmt = "%(client)s|%(method)s|%(path)s|%(status)d|%(header_user_agent)s"
    try:
        seen = Seen()
        app = make_app(seen) if interface == "native" else asgi_echo
        srv = serve(app, lifespan="off", access_log=True, access_log_format=fmt)

        async def go() -> None:
            async with ws_connect(srv.port, "/echo?x=1", user_agent_header="probe/1") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                await ws.send("again")
                assert await ws.recv() == "again"

        run(go())
        for _ in range(100):
            if any("[closed" in r.getMessage() for r in records):
                break
            threading.Event().wait(0.05)
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    lines = [r.getMessage() for r in records]
    accepted = [line for line in lines if line.endswith(" [accepted]")]
    closed = [r for r in records if "[closed" in r.getMessage()]
    assert len(accepted) == 1 and len(closed) == 1
    client, method, path, status, agent = accepted[0].removesuffix(" [accepted]").split("|")
    assert client.startswith("127.0.0.1:") and (method, path, status, agent) == (
        "GET",
        "/echo?x=1",
        "101",
        "probe/1",
    )
    line = closed[0].getMessage()
    assert line == f"{client}|GET|/echo?x=1|101|probe/1 [closed 1000, 2 in, 2 out]"
    record: Any = closed[0]
    assert (record.ws_close_code, record.ws_messages_in, record.ws_messages_out) == (1000, 2, 2)
    assert record.duration_ms > 0
