"""Keepalive, graceful shutdown, backpressure both ways, and cleanup after sessions."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from blazeasgi import App
from blazeasgi.cli import build_parser, config_from_args
from blazeasgi.websocket import WebSocket

from ..helpers.websocket import FrameReader, close_code, frame, read_head, request


def ws_connect(port: int, path: str = "/ws", **kwargs: Any) -> Any:
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 5)
    return connect(f"ws://127.0.0.1:{port}{path}", **kwargs)


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Echo:
    """ASGI echo recording the disconnect event."""

    def __init__(self) -> None:
        self.disconnects: list[dict[str, Any]] = []
        self.done = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message)
                self.done.set()
                return
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})


@pytest.mark.parametrize("codec", ["websockets", "wsproto"])
def test_unanswered_keepalive_ping_closes_1011(serve, codec: str) -> None:
    app = Echo()
    srv = serve(app, ws_ping_interval=0.05, ws_ping_timeout=0.05, ws=codec)
    with srv.connect() as sock:
        sock.sendall(request())
        _, rest = read_head(sock)
        reader = FrameReader(sock, rest)
        opcode, _ = reader.next()
        assert opcode == 9  # the server's ping, which this client ignores
        opcode, payload = reader.next()
        assert opcode == 8 and close_code(payload) == 1011
        assert b"keepalive" in payload
    assert app.done.wait(5)
    assert app.disconnects[0]["code"] == 1011


def test_answered_keepalive_pings_keep_the_connection(serve, run) -> None:
    srv = serve(Echo(), ws_ping_interval=0.02, ws_ping_timeout=1)

    async def go() -> None:
        async with ws_connect(srv.port) as ws:  # the client library answers pings
            for i in range(5):
                await asyncio.sleep(0.05)  # several ping rounds go by
                await ws.send(str(i))
                assert await ws.recv() == str(i)

    run(go())


@pytest.mark.parametrize("codec", ["websockets", "wsproto"])
def test_raw_client_sees_server_pings_and_its_pong_is_accepted(serve, codec: str) -> None:
    srv = serve(Echo(), ws_ping_interval=0.02, ws_ping_timeout=2, ws=codec)
    with srv.connect() as sock:
        sock.sendall(request())
        _, rest = read_head(sock)
        reader = FrameReader(sock, rest)
        for _ in range(3):  # a pong answers each ping, so the next one comes
            opcode, payload = reader.next()
            assert opcode == 9
            sock.sendall(frame(10, payload))
        sock.sendall(frame(1, b"still here"))
        while True:
            opcode, payload = reader.next()
            if opcode == 1:
                assert payload == b"still here"
                break
            assert opcode == 9


def test_graceful_shutdown_closes_websockets_with_1001(serve, run) -> None:
    app = Echo()
    srv = serve(app)
    opened = threading.Event()

    async def go() -> tuple[int | None, str | None]:
        async with ws_connect(srv.port) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            opened.set()
            with pytest.raises(ConnectionClosed):
                await ws.recv()  # until the server goes away
            return ws.close_code, ws.close_reason

    def stop() -> None:
        assert opened.wait(5)
        srv.loop.call_soon_threadsafe(srv.server.request_stop)

    stopper = threading.Thread(target=stop)
    stopper.start()
    code, reason = run(go())
    stopper.join()
    assert code == 1001
    assert reason
    assert app.done.wait(5)
    assert app.disconnects[0]["code"] == 1001


def test_slow_reader_makes_send_wait_and_bounds_the_buffer(serve) -> None:
    chunk = bytes(range(256)) * 1024  # 256 KiB
    total = 64  # 16 MiB: far more than the socket buffers below hold
    sent: list[int] = []
    buffered: list[int] = []
    app = App()

    @app.websocket("/ws")
    async def flood(ws: WebSocket) -> None:
        await ws.accept()
        transport = ws._conn.transport  # type: ignore[union-attr]
        for i in range(total):
            await ws.send_bytes(chunk)
            buffered.append(transport.get_write_buffer_size())
            sent.append(i)
        await ws.close()

    srv = serve(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # no autotuning: a slow reader
    sock.settimeout(5)
    sock.connect(("127.0.0.1", srv.port))
    with sock:
        sock.sendall(request())
        _, rest = read_head(sock)
        # Read nothing until the handler stops making progress: it waits in send().
        previous = -1
        while len(sent) != previous:
            previous = len(sent)
            time.sleep(0.2)
        blocked_at = len(sent)
        reader = FrameReader(sock, rest)
        for _ in range(total):
            assert reader.next() == (2, chunk)
        assert reader.next()[0] == 8
    assert blocked_at < total  # send() waited for the client
    assert len(sent) == total  # and went on once it read
    assert max(buffered) <= 65536  # never more than the write high-water mark buffered


def test_app_not_reading_pauses_the_client_without_losing_messages(serve, run) -> None:
    release = threading.Event()
    queued: list[int] = []
    payload = "x" * 8192
    total = 300  # 2.4 MB, while one read brings at most 256 KiB (32 messages)
    app = App()

    @app.websocket("/ws")
    async def lazy(ws: WebSocket) -> None:
        await ws.accept()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 5)
        queued.append(len(ws._conn._queue))  # type: ignore[union-attr]
        count = 0
        async for message in ws:
            assert message == f"{count}:{payload}"
            count += 1
            if count == total:
                await ws.send_text(f"got {count}")

    srv = serve(app, ws_max_queue=8)

    async def go() -> None:
        async with ws_connect(srv.port, compression=None) as ws:  # sizes on the wire as sent
            for i in range(total):
                await ws.send(f"{i}:{payload}")
            await asyncio.sleep(0.1)  # let the server read what it will
            release.set()
            assert await ws.recv() == f"got {total}"

    run(go())
    # Reading paused once 8 messages waited (plus what the read that crossed the
    # bound brought): the rest waited in the kernel's buffers, not in the server.
    assert queued and queued[0] <= 8 + 32


def _count_tasks(loop: asyncio.AbstractEventLoop) -> int:
    async def count() -> int:
        return len([t for t in asyncio.all_tasks() if not t.done()])

    return asyncio.run_coroutine_threadsafe(count(), loop).result(5)


def test_sessions_leave_no_tasks_or_registrations_behind(serve, run) -> None:
    app = Echo()
    srv = serve(app)

    async def go(sessions: int) -> None:
        for i in range(sessions):
            async with ws_connect(srv.port) as ws:
                await ws.send(str(i))
                assert await ws.recv() == str(i)

    # The first session makes the server's first runner task (engine/tasks.py),
    # which stays in its pool for the next handler: the baseline counts it.
    run(go(1))
    assert wait_until(lambda: len(app.disconnects) == 1 and not srv.state.websockets)
    baseline = _count_tasks(srv.loop)
    run(go(5))
    assert wait_until(lambda: len(app.disconnects) == 6)
    assert wait_until(lambda: not srv.state.websockets)
    assert wait_until(lambda: _count_tasks(srv.loop) <= baseline)


def test_client_vanishing_without_close_is_1006(serve) -> None:
    app = Echo()
    srv = serve(app)
    sock = srv.connect()
    sock.sendall(request())
    read_head(sock)
    sock.sendall(frame(1, b"hi"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, no close frame
    assert app.done.wait(5)
    assert app.disconnects[0]["code"] == 1006


def test_cli_flags_reach_the_config() -> None:
    args = build_parser().parse_args(
        [
            "app:app",
            "--ws",
            "wsproto",
            "--ws-max-size",
            "1000",
            "--ws-ping-interval",
            "5",
            "--ws-ping-timeout",
            "2.5",
            "--ws-per-message-deflate",
            "false",
        ]
    )
    config = config_from_args(args)
    assert config.ws == "wsproto"
    assert config.ws_max_size == 1000
    assert config.ws_ping_interval == 5.0
    assert config.ws_ping_timeout == 2.5
    assert config.ws_per_message_deflate is False
    defaults = config_from_args(build_parser().parse_args(["app:app"]))
    assert (defaults.ws, defaults.ws_per_message_deflate) == ("auto", True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["app:app", "--ws", "bogus"])
