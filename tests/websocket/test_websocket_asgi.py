"""ASGI WebSockets (spec 2.5) seen from the real `websockets` client library."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from blazeasgi import Config

# Every test in this file runs under uvloop and asyncio (the fixtures), and the
# echo tests under both frame libraries.
CODECS = ["websockets", "wsproto"]


def ws_connect(port: int, path: str = "/ws", **kwargs: Any) -> Any:
    kwargs.setdefault("proxy", None)  # never a proxy from the environment: 127.0.0.1 only
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 5)
    return connect(f"ws://127.0.0.1:{port}{path}", **kwargs)


class Recorder:
    """An ASGI echo app that records what it saw, for the test thread to check."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self.finished = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"plain http"})
            return
        self.scopes.append(scope)
        try:
            assert await receive() == {"type": "websocket.connect"}
            subprotocol = "chat" if "chat" in scope["subprotocols"] else None
            await send(
                {"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-accepted", b"yes")]}
            )
            while True:
                message = await receive()
                self.events.append(message)
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text == "close-please":
                    await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
                    self.events.append(await receive())
                    return
                if text is not None:
                    await send({"type": "websocket.send", "text": text})
                else:
                    await send({"type": "websocket.send", "bytes": message["bytes"]})
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self.finished.set()


@pytest.mark.parametrize("codec", CODECS)
def test_echo_text_binary_fragmented_and_large(serve, run, codec: str) -> None:
    app = Recorder()
    srv = serve(app, ws=codec)

    async def go() -> None:
        async with ws_connect(srv.port, subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-accepted"] == "yes"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"
            await ws.send(["frag", "men", "ted"])  # one message in three frames
            assert await ws.recv() == "fragmented"
            big = bytes(range(256)) * 4096  # 1 MiB
            await ws.send(big)
            assert await ws.recv() == big
            await ws.ping()  # answered by the server: returns once the pong is back
        assert ws.close_code == 1000

    run(go())
    assert app.finished.wait(5)
    assert not app.errors
    assert app.events[-1] == {"type": "websocket.disconnect", "code": 1000, "reason": ""}


@pytest.mark.parametrize("codec", CODECS)
def test_permessage_deflate_is_negotiated_and_used(serve, run, codec: str) -> None:
    srv = serve(Recorder(), ws=codec)

    async def go() -> None:
        async with ws_connect(srv.port) as ws:
            assert "permessage-deflate" in ws.response.headers.get("sec-websocket-extensions", "")
            text = "compress me " * 5000
            await ws.send(text)
            assert await ws.recv() == text

    run(go())


def test_permessage_deflate_can_be_turned_off(serve, run) -> None:
    srv = serve(Recorder(), ws_per_message_deflate=False)

    async def go() -> None:
        async with ws_connect(srv.port) as ws:
            assert "sec-websocket-extensions" not in ws.response.headers
            await ws.send("plain")
            assert await ws.recv() == "plain"

    run(go())


def test_scope(serve, run) -> None:
    app = Recorder()
    srv = serve(app, root_path="/prefix")

    async def go() -> None:
        async with ws_connect(
            srv.port, "/a%20b/ws?x=1&y=2", subprotocols=["chat", "v2"], additional_headers={"X-Custom": "1"}
        ) as ws:
            await ws.send("hi")
            await ws.recv()

    run(go())
    assert app.finished.wait(5)
    scope = app.scopes[0]
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["root_path"] == "/prefix"
    assert scope["path"] == "/prefix/a b/ws"
    assert scope["raw_path"] == b"/prefix/a%20b/ws"
    assert scope["query_string"] == b"x=1&y=2"
    assert scope["subprotocols"] == ["chat", "v2"]
    assert (b"x-custom", b"1") in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ("127.0.0.1", srv.port)
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert isinstance(scope["state"], dict)


def test_client_close_code_and_reason_reach_the_app(serve, run) -> None:
    app = Recorder()
    srv = serve(app)

    async def go() -> None:
        async with ws_connect(srv.port) as ws:
            await ws.close(4321, "bye now")

    run(go())
    assert app.finished.wait(5)
    assert app.events[-1] == {"type": "websocket.disconnect", "code": 4321, "reason": "bye now"}


@pytest.mark.parametrize("codec", CODECS)
def test_app_close_code_and_reason_reach_the_client(serve, run, codec: str) -> None:
    app = Recorder()
    srv = serve(app, ws=codec)

    async def go() -> None:
        async with ws_connect(srv.port) as ws:
            await ws.send("close-please")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001
            assert ws.close_reason == "asked to"

    run(go())
    assert app.finished.wait(5)
    # After its own close, receive() gives the app the disconnect at once.
    assert app.events[-1]["type"] == "websocket.disconnect"
    assert app.events[-1]["code"] == 4001


def _expect_status(srv: Any, run: Callable[[Any], Any], status: int, path: str = "/ws") -> Any:
    async def go() -> Any:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(srv.port, path):
                pass
        return info.value.response

    response = run(go())
    assert response.status_code == status
    return response


def test_close_before_accept_is_403(serve, run) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        assert (await receive())["type"] == "websocket.disconnect"

    response = _expect_status(serve(app), run, 403)
    assert response.headers["connection"] == "close"


def test_denial_response_extension(serve, run) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"who ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"are you?"})

    response = _expect_status(serve(app), run, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.body == b"who are you?"


def test_exception_before_accept_is_500(serve, run, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("boom")

    _expect_status(serve(app), run, 500)
    assert "boom" in caplog.text


def test_returning_without_handshake_is_500(serve, run) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()

    _expect_status(serve(app), run, 500)


def test_exception_after_accept_closes_1011(serve, run) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise RuntimeError("handler bug")

    srv = serve(app)

    async def go() -> None:
        async with ws_connect(srv.port) as ws:
            await ws.send("trigger")
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
            assert ws.close_code == 1011

    run(go())


def test_returning_after_accept_closes_1000(serve, run) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "only this"})

    srv = serve(app)

    async def go() -> None:
        async with ws_connect(srv.port) as ws:
            assert await ws.recv() == "only this"
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1000

    run(go())


def test_send_after_client_left_raises_oserror(serve, run) -> None:
    outcome: list[BaseException | None] = []
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "too late"})
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        done.set()

    srv = serve(app)

    async def go() -> None:
        async with ws_connect(srv.port):
            pass

    run(go())
    assert done.wait(5)
    assert isinstance(outcome[0], OSError)


@pytest.mark.parametrize("codec", CODECS)
def test_message_over_max_size_closes_1009(serve, run, codec: str) -> None:
    srv = serve(Recorder(), ws_max_size=1000, ws=codec)

    async def go() -> None:
        async with ws_connect(srv.port) as ws:
            await ws.send("x" * 1000)  # at the limit: fine
            assert await ws.recv() == "x" * 1000
            await ws.send(["x" * 500, "x" * 501])  # fragments count together
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009

    run(go())


def test_websocket_upgrade_with_ws_none_is_plain_http(serve, run) -> None:
    srv = serve(Recorder(), ws="none")

    async def go() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(srv.port):
                pass
        return info.value.response

    response = run(go())
    assert response.status_code == 200
    assert response.body == b"plain http"


def test_config_defaults_match_uvicorn() -> None:
    config = Config()
    assert config.ws == "auto"
    assert config.ws_max_size == 16 * 1024 * 1024
    assert config.ws_ping_interval == 20.0
    assert config.ws_ping_timeout == 20.0
    assert config.ws_per_message_deflate is True


def test_many_clients_at_once(serve, run) -> None:
    srv = serve(Recorder())

    async def client(i: int) -> None:
        ws: ClientConnection
        async with ws_connect(srv.port) as ws:
            for j in range(20):
                await ws.send(f"{i}:{j}")
                assert await ws.recv() == f"{i}:{j}"

    async def go() -> None:
        await asyncio.gather(*(client(i) for i in range(20)))

    run(go())
