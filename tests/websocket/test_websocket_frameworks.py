"""Starlette and FastAPI WebSocket endpoints served unchanged, seen from `websockets`."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Query, WebSocketException
from fastapi import WebSocket as FastAPIWebSocket
from fastapi import WebSocketDisconnect as FastAPIWebSocketDisconnect
from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def ws_connect(port: int, path: str, **kwargs: Any) -> Any:
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 5)
    return connect(f"ws://127.0.0.1:{port}{path}", **kwargs)


# -- Starlette ---------------------------------------------------------------------------------
class Counter(WebSocketEndpoint):
    encoding = "json"
    closed_with: list[int] = []
    closed = threading.Event()

    async def on_connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.count = 0

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        self.count += data["add"]
        await websocket.send_json({"total": self.count})

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        self.closed_with.append(close_code)
        self.closed.set()


async def talk(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="talk.v1", headers=[(b"x-room", b"main")])
    async for text in websocket.iter_text():
        if text == "bye":
            await websocket.close(code=4002, reason="goodbye")
            return
        await websocket.send_text(text.upper())


async def private(websocket: WebSocket) -> None:
    if websocket.query_params.get("token") != "secret":
        await websocket.send_denial_response(PlainTextResponse("token required", status_code=401))
        return
    await websocket.accept()
    await websocket.send_bytes(b"welcome")
    await websocket.close()


async def homepage(request: Any) -> PlainTextResponse:
    return PlainTextResponse("home")


starlette_app = Starlette(
    routes=[
        Route("/", homepage),
        WebSocketRoute("/counter", Counter),
        WebSocketRoute("/talk", talk),
        WebSocketRoute("/private", private),
    ]
)


def test_starlette_endpoint_class_with_json(serve, run) -> None:
    srv = serve(starlette_app)

    async def go() -> None:
        async with ws_connect(srv.port, "/counter") as ws:
            for add, total in ((1, 1), (2, 3), (10, 13)):
                await ws.send(f'{{"add": {add}}}')
                assert await ws.recv() == f'{{"total":{total}}}'
            await ws.close(1000)

    Counter.closed.clear()
    run(go())
    assert Counter.closed.wait(5)
    assert Counter.closed_with[-1] == 1000


def test_starlette_subprotocol_headers_and_close_reason(serve, run) -> None:
    srv = serve(starlette_app)

    async def go() -> None:
        async with ws_connect(srv.port, "/talk", subprotocols=["talk.v1"]) as ws:
            assert ws.subprotocol == "talk.v1"
            assert ws.response.headers["x-room"] == "main"
            await ws.send("hello")
            assert await ws.recv() == "HELLO"
            await ws.send("bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4002, "goodbye")

    run(go())
    assert httpx.get(srv.url("/")).text == "home"


def test_starlette_denial_response(serve, run) -> None:
    srv = serve(starlette_app)

    async def go() -> Any:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(srv.port, "/private"):
                pass
        async with ws_connect(srv.port, "/private?token=secret") as ws:
            assert await ws.recv() == b"welcome"
        return info.value.response

    response = run(go())
    assert response.status_code == 401
    assert response.body == b"token required"


# -- FastAPI -----------------------------------------------------------------------------------
api = FastAPI()
disconnects: list[int] = []
disconnected = threading.Event()


async def room_token(token: Annotated[str | None, Query()] = None) -> str:
    if token is None:
        raise WebSocketException(code=1008, reason="token missing")
    return token


@api.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@api.websocket("/rooms/{room_id}/ws")
async def room(websocket: FastAPIWebSocket, room_id: int, token: Annotated[str, Depends(room_token)]) -> None:
    await websocket.accept()
    await websocket.send_json({"room": room_id, "token": token})
    try:
        while True:
            data = await websocket.receive_text()
            await websocket.send_text(f"room {room_id}: {data}")
    except FastAPIWebSocketDisconnect as exc:
        disconnects.append(exc.code)
        disconnected.set()


def test_fastapi_websocket_with_path_query_and_dependency(serve, run) -> None:
    srv = serve(api)
    disconnected.clear()

    async def go() -> None:
        async with ws_connect(srv.port, "/rooms/7/ws?token=abc") as ws:
            assert await ws.recv() == '{"room":7,"token":"abc"}'
            await ws.send("hi")
            assert await ws.recv() == "room 7: hi"
            await ws.close(1001)

    run(go())
    assert disconnected.wait(5)
    assert disconnects[-1] == 1001
    assert httpx.get(srv.url("/items/3")).json() == {"item_id": 3}


def test_fastapi_websocket_exception_before_accept_refuses(serve, run) -> None:
    srv = serve(api)

    async def go() -> Any:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(srv.port, "/rooms/7/ws"):
                pass
        return info.value.response

    assert run(go()).status_code == 403


def test_fastapi_unknown_websocket_path_refuses(serve, run) -> None:
    srv = serve(api)

    async def go() -> Any:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(srv.port, "/nope"):
                pass
        return info.value.response

    assert run(go()).status_code == 403
