"""The opening handshake on raw sockets: what a broken or unusual client gets."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest

from blazeasgi import App
from blazeasgi.websocket import WebSocket

from ..helpers.websocket import (
    KEY,
    FrameReader,
    asgi_echo,
    close_code,
    frame,
    read_head,
    read_response,
    request,
)

ACCEPT = base64.b64encode(hashlib.sha1(KEY.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())


native = App()


@native.websocket("/ws")
async def native_echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send(message)


APPS = {"asgi": asgi_echo, "native": native}


@pytest.mark.parametrize("kind", APPS)
def test_valid_handshake_gets_101_with_the_accept_key(serve, kind: str) -> None:
    srv = serve(APPS[kind])
    with srv.connect() as sock:
        sock.sendall(request())
        head, rest = read_head(sock)
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
        fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
        assert fields[b"upgrade"] == b"websocket"
        assert fields[b"connection"] == b"upgrade"
        assert fields[b"sec-websocket-accept"] == ACCEPT.lower()
        assert b"server" in fields and b"date" in fields
        sock.sendall(frame(1, b"ping?"))
        assert FrameReader(sock, rest).next() == (1, b"ping?")


@pytest.mark.parametrize("kind", APPS)
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec_WebSocket_Version": "8"}, 426),
        ({"Sec_WebSocket_Version": None}, 426),
        ({"Sec_WebSocket_Key": None}, 400),
        ({"Sec_WebSocket_Key": "not base64!"}, 400),
        ({"Sec_WebSocket_Key": base64.b64encode(b"short").decode()}, 400),
    ],
)
def test_invalid_handshakes(serve, kind: str, headers: dict[str, str | None], status: int) -> None:
    srv = serve(APPS[kind])
    with srv.connect() as sock:
        sock.sendall(request(**headers))
        response = read_response(sock)  # the server closes after answering
    head = response.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 %d " % status)
    assert b"\r\nconnection: close" in head
    if status == 426:
        assert b"\r\nsec-websocket-version: 13" in head
        assert b"\r\nupgrade: websocket" in head


def test_post_upgrade_is_rejected(serve) -> None:
    srv = serve(asgi_echo)
    with srv.connect() as sock:
        sock.sendall(request().replace(b"GET ", b"POST ", 1))
        assert read_response(sock).startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize("kind", APPS)
def test_frames_sent_with_the_handshake_are_not_lost(serve, kind: str) -> None:
    srv = serve(APPS[kind])
    with srv.connect() as sock:
        sock.sendall(request() + frame(1, b"early") + frame(2, b"bird"))
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101")
        reader = FrameReader(sock, rest)
        assert reader.next() == (1, b"early")
        assert reader.next() == (2, b"bird")


@pytest.mark.parametrize("codec", ["websockets", "wsproto"])
@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([frame(1, b"\xff\xfe")], 1007),  # invalid UTF-8
        ([frame(1, b"\xce", fin=False), frame(0, b"\xff")], 1007),  # split invalid UTF-8
        ([frame(9, b"x" * 126)], 1002),  # control frame too long
        ([frame(0, b"orphan")], 1002),  # continuation with nothing to continue
        ([frame(3, b"?")], 1002),  # reserved opcode
        ([b"\x81\x02hi"], 1002),  # unmasked client frame
    ],
)
def test_protocol_errors_close_with_the_rfc_code(serve, codec: str, frames: list[bytes], code: int) -> None:
    srv = serve(asgi_echo, ws=codec)
    with srv.connect() as sock:
        sock.sendall(request())
        _, rest = read_head(sock)
        sock.sendall(b"".join(frames))
        reader = FrameReader(sock, rest)
        opcode, payload = reader.next()
        assert opcode == 8
        assert close_code(payload) == code
        assert sock.recv(100) == b""  # and the server closes the TCP connection


@pytest.mark.parametrize("codec", ["websockets", "wsproto"])
def test_client_ping_gets_pong_and_close_is_echoed(serve, codec: str) -> None:
    srv = serve(asgi_echo, ws=codec)
    with srv.connect() as sock:
        sock.sendall(request())
        _, rest = read_head(sock)
        reader = FrameReader(sock, rest)
        sock.sendall(frame(9, b"are you there"))
        assert reader.next() == (10, b"are you there")
        sock.sendall(frame(8, struct.pack("!H", 1000) + b"done"))
        opcode, payload = reader.next()
        assert opcode == 8 and close_code(payload) == 1000
        assert sock.recv(100) == b""


@pytest.mark.parametrize("codec", ["websockets", "wsproto"])
@pytest.mark.parametrize(
    ("offer", "accepted"),
    [
        ("x-unknown, permessage-deflate; client_max_window_bits", True),
        ("permessage-deflate; server_max_window_bits=8", False),  # a window zlib cannot do
        ("permessage-deflate; client_max_window_bits=99", False),
        ('permessage-deflate; =";', None),  # malformed: refused or read leniently, never a failure
    ],
)
def test_deflate_offers(serve, codec: str, offer: str, accepted: bool | None) -> None:
    srv = serve(asgi_echo, ws=codec)
    with srv.connect() as sock:
        sock.sendall(request(Sec_WebSocket_Extensions=offer))
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101")
        negotiated = b"sec-websocket-extensions: permessage-deflate" in head.lower()
        assert negotiated == accepted or accepted is None
        if not negotiated:
            sock.sendall(frame(1, b"plain"))
            assert FrameReader(sock, rest).next() == (1, b"plain")
