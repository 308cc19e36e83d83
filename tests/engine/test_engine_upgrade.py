"""The engine's protocol-switch hook: what WebSockets (and any Upgrade) build on."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from blazeasgi.engine.exchange import Exchange

from ..conftest import MockConnection


class Echo(asyncio.Protocol):
    """A toy protocol after the switch: echoes bytes upper-cased."""

    def __init__(self, transport: Any, leftover: bytes) -> None:
        self.transport = transport
        if leftover:
            transport.write(leftover.upper())

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())


class UpgradingApp:
    """A served app (the engine's view) that switches `Upgrade: echo` requests."""

    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def dispatch(self, ex: Exchange) -> None:
        if ex.upgrade == b"echo":
            transport, leftover = ex.conn.switch_protocols(ex, b"upgrade: echo\r\nconnection: upgrade\r\n")
            transport.set_protocol(Echo(transport, leftover))
            transport.resume_reading()
            return
        ex.respond(200, b"", b"plain")


def _serve_raw(serve: Any) -> Any:
    srv = serve(lambda scope, receive, send: None, lifespan="off")
    srv.state.dispatch = UpgradingApp().dispatch
    return srv


def _recv_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_switch_protocols_hands_over_socket_and_leftover_bytes(serve) -> None:
    srv = _serve_raw(serve)
    with srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nearly")
        data = _recv_until(sock, b"EARLY")
        assert data.startswith(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n"
        )
        sock.sendall(b"later")
        assert _recv_until(sock, b"LATER").endswith(b"LATER")


def test_upgrade_not_taken_is_answered_as_http_and_closed(serve) -> None:
    srv = _serve_raw(serve)
    with srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: other\r\n\r\n")
        data = _recv_until(sock, b"plain")
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"connection: close\r\n" in data
        assert sock.recv(10) == b""


def test_switch_protocols_refused_for_a_plain_request(run) -> None:
    errors: list[Exception] = []

    class App(UpgradingApp):
        def dispatch(self, ex: Exchange) -> None:
            try:
                ex.conn.switch_protocols(ex, b"")
            except RuntimeError as exc:
                errors.append(exc)
            ex.respond(200, b"", b"ok")

    async def go() -> bytes:
        conn = MockConnection(lambda s, r, se: None)
        conn.state.dispatch = App().dispatch
        conn.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return await conn.settle()

    out = run(go())
    assert out.startswith(b"HTTP/1.1 200 OK") and len(errors) == 1


@pytest.mark.parametrize(
    "framing",
    [
        b"content-length: 5\r\n\r\nhello",
        b"transfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\nz: 1\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
@pytest.mark.parametrize("step", [None, 1], ids=["one-read", "byte-reads"])
def test_upgrade_body_is_read_before_the_switch(run, framing: bytes, step: int | None) -> None:
    """An upgrade request's body is HTTP/1.1-framed (RFC 9110 §7.8): the app reads it,
    and only the bytes after it are the new protocol's."""
    seen: dict[str, bytes] = {}

    async def handle(ex: Exchange) -> None:
        seen["body"] = await ex.read_body()
        _, seen["leftover"] = ex.conn.switch_protocols(ex, b"upgrade: echo\r\nconnection: upgrade\r\n")

    data = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n" + framing
    if step is None:
        data += b"NEW PROTOCOL"

    async def go() -> bytes:
        conn = MockConnection(lambda s, r, se: None)
        conn.state.dispatch = handle
        for i in range(0, len(data), step or len(data)):
            conn.feed(data[i : i + (step or len(data))])
            await asyncio.sleep(0)
        return await conn.settle()

    out = run(go())
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), out
    assert seen == {"body": b"hello", "leftover": b"NEW PROTOCOL" if step is None else b""}


def test_switch_protocols_refused_before_the_body_is_read(run) -> None:
    errors: list[Exception] = []

    def dispatch(ex: Exchange) -> None:
        try:
            ex.conn.switch_protocols(ex, b"upgrade: echo\r\nconnection: upgrade\r\n")
        except RuntimeError as exc:
            errors.append(exc)
        ex.respond(200, b"", b"ok")

    async def go() -> bytes:
        conn = MockConnection(lambda s, r, se: None)
        conn.state.dispatch = dispatch
        conn.feed(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n")
        conn.feed(b"content-length: 5\r\n\r\nhe")
        return await conn.settle()

    out = run(go())
    assert out.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in out and len(errors) == 1
