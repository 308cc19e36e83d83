"""WebSockets over HTTP/2 (RFC 8441, extended CONNECT), for both interfaces.

The h2 library is the client: it opens a stream with ``:method CONNECT`` and
``:protocol websocket`` once the server has announced SETTINGS_ENABLE_CONNECT_PROTOCOL,
and the stream's DATA then carries WebSocket frames both ways. Every test runs
against the ASGI app and the native one (the same behaviour, written twice), under
both event loops (the ``serve`` fixture).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterator
from typing import Any

import h2.events
import pytest

from blazeasgi import App, Response, WebSocket
from blazeasgi.engine import http2

from ..conftest import RunningServer
from ..h2client import H2Client, Reply, wait_for
from ..helpers.websocket import close_code, frame

pytestmark = pytest.mark.skipif(not http2.AVAILABLE, reason="zttp (the HTTP/2 codec) is not installed")

Serve = Callable[..., RunningServer]
SEEN: dict[str, Any] = {}
BIG = 1 << 20  # the message sent to a client whose window is far smaller
TEXT, BINARY, CLOSE = 0x1, 0x2, 0x8
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, CANCEL = 0x1, 0x3, 0x8


@pytest.fixture(autouse=True)
def clear_seen() -> Iterator[None]:
    SEEN.clear()
    yield


# -- the apps: echo, a server-side close, a large message, refusals ---------------------------
async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"http"})
        return
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    SEEN["session"] = (scope["http_version"], scope["scheme"], path, scope["query_string"])
    if path == "/refuse":
        await send({"type": "websocket.close"})
        return
    if path == "/deny":
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"login first"})
        return
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": scope["subprotocols"][0] if scope["subprotocols"] else None,
        }
    )
    if path == "/bye":
        await send({"type": "websocket.send", "text": "bye"})
        await send({"type": "websocket.close", "code": 4001, "reason": "done"})
    elif path == "/big":
        await send({"type": "websocket.send", "bytes": b"b" * BIG})
    elif path == "/stall":
        await stall()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            SEEN["disconnect"] = message["code"]
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})


async def stall() -> None:
    """Read nothing until the test says so (SEEN["go"])."""
    while not SEEN.get("go"):
        await asyncio.sleep(0.01)


native_app = App()


@native_app.websocket("/{name}")
async def native_session(ws: WebSocket) -> Response | None:
    name = ws.path_params["name"]
    SEEN["session"] = ("2", ws.scheme, "/" + name, ws.query_string)
    if name == "refuse":
        await ws.close()
        return None
    if name == "deny":
        return Response(b"login first", status_code=401, media_type="text/plain")
    await ws.accept(ws.subprotocols[0] if ws.subprotocols else None)
    if name == "bye":
        await ws.send_text("bye")
        await ws.close(4001, "done")
    elif name == "big":
        await ws.send_bytes(b"b" * BIG)
    elif name == "stall":
        await stall()
    async for message in ws:
        await ws.send(message)
    SEEN["disconnect"] = ws.close_code
    return None


APPS = {"asgi": asgi_app, "native": native_app}
interfaces = pytest.mark.parametrize("app", APPS.values(), ids=APPS.keys())


@pytest.fixture(params=APPS.values(), ids=APPS.keys())
def server(request: pytest.FixtureRequest, serve: Serve) -> RunningServer:
    return serve(request.param)


# -- the client side ---------------------------------------------------------------------------
class WebSocketStream:
    """One WebSocket on an HTTP/2 stream of ``client``."""

    def __init__(
        self,
        client: H2Client,
        path: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        early: bytes = b"",
    ) -> None:
        """``early``: bytes sent right behind the request, before the 200 came."""
        self.client = client
        client.until(lambda: client.conn.remote_settings.enable_connect_protocol == 1)
        self.stream_id = client.conn.get_next_available_stream_id()
        fields = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"localhost"),
        ]
        if headers is None:
            headers = [(b"sec-websocket-version", b"13")]
        client.conn.send_headers(self.stream_id, fields + headers)
        if early:
            client.conn.send_data(self.stream_id, early)
        client.flush()
        client.until(lambda: self.reply.status or self.reply.reset is not None)
        self._read = 0

    @property
    def reply(self) -> Reply:
        return self.client.replies[self.stream_id]

    def window(self) -> int:
        """The stream's send window, once every frame the server sent before
        answering a PING has been read."""
        client = self.client
        client.conn.ping(b"h2ws-win")
        client.flush()
        pongs = len(self._pongs())
        client.until(lambda: len(self._pongs()) > pongs)
        return int(client.conn.local_flow_control_window(self.stream_id))

    def _pongs(self) -> list[Any]:
        return [e for e in self.client.events if isinstance(e, h2.events.PingAckReceived)]

    def send(self, opcode: int, payload: bytes, end: bool = False) -> None:
        self.client.send(self.stream_id, frame(opcode, payload), end=end)

    def _frame(self) -> tuple[int, bytes] | None:
        data = self.reply.body
        pos = self._read
        if len(data) - pos < 2:
            return None
        size, head = data[pos + 1] & 0x7F, 2
        if size == 126:
            size, head = struct.unpack("!H", data[pos + 2 : pos + 4])[0], 4
        elif size == 127:
            size, head = struct.unpack("!Q", data[pos + 2 : pos + 10])[0], 10
        if len(data) - pos < head + size:
            return None
        self._read = pos + head + size
        assert not data[pos + 1] & 0x80, "a server frame must not be masked"
        return data[pos] & 0x0F, bytes(data[pos + head : pos + head + size])

    def receive(self) -> tuple[int, bytes]:
        """The next whole frame from the server."""
        got: list[tuple[int, bytes]] = []

        def arrived() -> bool:
            one = self._frame()
            if one is not None:
                got.append(one)
            return bool(got) or self.reply.ended or self.reply.reset is not None

        self.client.until(arrived)
        assert got, f"the stream ended first (reset: {self.reply.reset})"
        return got[0]


def open_ws(server: RunningServer, path: str = "/ws", **kwargs: Any) -> WebSocketStream:
    return WebSocketStream(H2Client(server.connect()), path, **kwargs)


def h2_streams(server: RunningServer) -> list[http2.HTTP2Connection]:
    return [c for c in server.state.connections if isinstance(c, http2.HTTP2Connection)]


# -- the handshake -----------------------------------------------------------------------------
def test_handshake_is_a_200_on_the_stream(server: RunningServer) -> None:
    """ENABLE_CONNECT_PROTOCOL is announced; the extended CONNECT gets :status 200,
    without the HTTP/1.1 upgrade's fields, and the app sees an HTTP/2 WebSocket."""
    ws = open_ws(
        server,
        "/ws?room=1",
        headers=[
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-protocol", b"chat, superchat"),
        ],
    )
    assert ws.reply.status == 200
    names = {name for name, _ in ws.reply.headers}
    assert not names & {b"sec-websocket-accept", b"upgrade", b"connection", b"content-length"}
    assert ws.reply.header(b"sec-websocket-protocol") == b"chat"
    assert SEEN["session"] == ("2", "ws", "/ws", b"room=1")
    ws.send(TEXT, "héllo".encode())
    assert ws.receive() == (TEXT, "héllo".encode())


def test_echo_text_and_binary_both_ways(server: RunningServer) -> None:
    ws = open_ws(server)
    for n in range(3):
        ws.send(TEXT, b"text %d" % n)
        ws.send(BINARY, bytes([n]) * 70_000)  # past the initial 65,535-byte window
    for n in range(3):
        assert ws.receive() == (TEXT, b"text %d" % n)
        assert ws.receive() == (BINARY, bytes([n]) * 70_000)
    # A second WebSocket and a plain request share the connection.
    other = WebSocketStream(ws.client, "/ws")
    other.send(TEXT, b"second")
    assert other.receive() == (TEXT, b"second")
    assert ws.client.get("/").status in (200, 404)


def test_frames_sent_before_the_200(server: RunningServer) -> None:
    """DATA that came before the app accepted is the session's first bytes."""
    early = frame(TEXT, b"early") + frame(BINARY, b"bird")
    ws = WebSocketStream(H2Client(server.connect()), "/ws", early=early)
    assert ws.reply.status == 200
    assert ws.receive() == (TEXT, b"early")
    assert ws.receive() == (BINARY, b"bird")


def test_client_closes(server: RunningServer) -> None:
    """Close frames both ways, then END_STREAM both ways: the app sees 1000 and
    the stream is gone from the connection."""
    ws = open_ws(server)
    ws.send(CLOSE, struct.pack("!H", 1000) + b"bye")
    opcode, payload = ws.receive()
    assert (opcode, close_code(payload)) == (CLOSE, 1000)
    ws.client.until(lambda: ws.reply.ended)
    ws.client.conn.end_stream(ws.stream_id)
    ws.client.flush()
    wait_for(lambda: SEEN.get("disconnect") == 1000)
    wait_for(lambda: all(not c.streams for c in h2_streams(server)))
    assert ws.reply.reset is None
    assert ws.client.get("/").status in (200, 404)  # the connection goes on


def test_server_closes(server: RunningServer) -> None:
    ws = open_ws(server, "/bye")
    assert ws.receive() == (TEXT, b"bye")
    opcode, payload = ws.receive()
    assert (opcode, close_code(payload), payload[2:]) == (CLOSE, 4001, b"done")
    ws.send(CLOSE, payload[:2], end=True)  # the client's answer, and its END_STREAM
    ws.client.until(lambda: ws.reply.ended)
    assert ws.reply.reset is None
    wait_for(lambda: all(not c.streams for c in h2_streams(server)))


def test_client_reset_is_a_disconnect(server: RunningServer) -> None:
    ws = open_ws(server)
    ws.send(TEXT, b"ping")
    assert ws.receive() == (TEXT, b"ping")
    ws.client.reset(ws.stream_id, CANCEL)
    wait_for(lambda: SEEN.get("disconnect") == 1006)
    wait_for(lambda: all(not c.streams for c in h2_streams(server)))
    assert ws.client.get("/").status in (200, 404)


def test_large_message_to_a_small_window(server: RunningServer) -> None:
    """1 MiB to a client whose stream window is 4 KiB: the server keeps to the
    window (h2 fails the connection otherwise) and the message arrives whole."""
    client = H2Client(server.connect(), window=4096)
    ws = WebSocketStream(client, "/big")
    assert ws.receive() == (BINARY, b"b" * BIG)
    ws.send(TEXT, b"after")
    assert ws.receive() == (TEXT, b"after")


# -- refusals and malformed requests -----------------------------------------------------------
def test_refused_before_accept_is_403(server: RunningServer) -> None:
    ws = open_ws(server, "/refuse")
    ws.client.until(lambda: ws.reply.ended or ws.reply.reset is not None)
    assert ws.reply.status == 403


def test_denial_response(server: RunningServer) -> None:
    ws = open_ws(server, "/deny")
    ws.client.until(lambda: ws.reply.ended or ws.reply.reset is not None)
    assert (ws.reply.status, bytes(ws.reply.body)) == (401, b"login first")


def test_malformed_extended_connect(server: RunningServer) -> None:
    """RFC 8441 §4/§5: a wrong Sec-WebSocket-Version is a 426 naming 13; an unknown
    :protocol is 501; a CONNECT without :path is malformed (the codec resets it)."""
    ws = open_ws(server, headers=[(b"sec-websocket-version", b"8")])
    ws.client.until(lambda: ws.reply.ended or ws.reply.reset is not None)
    assert (ws.reply.status, ws.reply.header(b"sec-websocket-version")) == (426, b"13")
    assert "session" not in SEEN  # refused before the app
    client = ws.client

    def connect(fields: list[tuple[bytes, bytes]]) -> int:
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(stream_id, [(b":method", b"CONNECT"), *fields])
        client.flush()
        return stream_id

    other = connect(
        [(b":protocol", b"chat"), (b":scheme", b"http"), (b":path", b"/ws"), (b":authority", b"localhost")]
    )
    assert client.response(other).status == 501
    client.conn.config.validate_outbound_headers = False  # (h2 would not send it)
    no_path = connect(
        [
            (b":protocol", b"websocket"),
            (b":scheme", b"http"),
            (b":authority", b"localhost"),
            (b"sec-websocket-version", b"13"),
        ]
    )
    assert client.response(no_path).reset == PROTOCOL_ERROR
    assert client.get("/").status in (200, 404)  # the connection goes on


def test_client_end_stream_without_close_frame(server: RunningServer) -> None:
    """END_STREAM is the tunnel's FIN: the server ends its side too, and the app
    sees the connection drop (1006)."""
    ws = open_ws(server)
    ws.send(TEXT, b"x", end=True)
    assert ws.receive() == (TEXT, b"x")
    ws.client.until(lambda: ws.reply.ended)
    assert ws.reply.reset is None
    wait_for(lambda: SEEN.get("disconnect") == 1006)
    wait_for(lambda: all(not c.streams for c in h2_streams(server)))


@interfaces
def test_unread_messages_hold_the_window(serve: Serve, app: Any) -> None:
    """An app that does not read: past ws_max_queue messages the stream's window
    stays shut (the client can send about a window more, not without end), and
    opens again as the app reads; every message then arrives, in order."""
    ws = open_ws(serve(app, ws_max_queue=2), "/stall")
    message = b"m" * 8192
    sent = 0
    while (window := ws.window()) >= len(message) + 8 and sent < 64:
        for _ in range(window // (len(message) + 8)):
            ws.send(BINARY, message)
            sent += 1
    assert 4 < sent < 20  # ~100 KiB: one window plus what was read before the pause
    SEEN["go"] = True
    ws.send(TEXT, b"last")
    for _ in range(sent):
        assert ws.receive() == (BINARY, message)
    assert ws.receive() == (TEXT, b"last")


@interfaces
def test_data_past_the_held_window_is_reset(serve: Serve, app: Any) -> None:
    """A client that sends past the window it was given while the app does not
    read gets RST_STREAM FLOW_CONTROL_ERROR (a paused session would otherwise take
    all of it), and the stream is over."""
    from hyperframe.frame import DataFrame

    server = serve(app, ws_max_queue=1)
    ws = open_ws(server, "/stall")
    while ws.window() > 0:
        ws.client.send(ws.stream_id, frame(BINARY, b"f" * (ws.window() - 6))[: ws.window()])
    overrun = DataFrame(ws.stream_id, data=frame(BINARY, b"over"))
    ws.client.sock.sendall(overrun.serialize())
    ws.client.until(lambda: ws.reply.reset is not None)
    assert ws.reply.reset == FLOW_CONTROL_ERROR
    SEEN["go"] = True
    wait_for(lambda: all(not c.streams for c in h2_streams(server)))
    assert ws.client.get("/").status in (200, 404)  # the connection goes on


@interfaces
def test_graceful_shutdown_closes_with_1001(serve: Serve, app: Any) -> None:
    server = serve(app)
    ws = open_ws(server)
    server.loop.call_soon_threadsafe(server.server.request_stop)
    opcode, payload = ws.receive()
    assert (opcode, close_code(payload)) == (CLOSE, 1001)
    ws.send(CLOSE, payload[:2], end=True)
    ws.client.until(lambda: ws.reply.ended or ws.reply.reset is not None)
    assert ws.reply.ended and ws.reply.reset is None
    ws.client.until(lambda: ws.client.closed)
    assert ws.client.goaway is not None


@interfaces
def test_limits_and_keepalive_as_over_http11(serve: Serve, app: Any) -> None:
    """The session's own rules hold on a stream: a message past ws_max_size is
    closed with 1009, and keepalive pings go out."""
    ws = open_ws(serve(app, ws_max_size=1000, ws_ping_interval=0.05))
    assert ws.receive()[0] == 0x9  # a ping
    ws.send(BINARY, b"x" * 2000)
    while (got := ws.receive())[0] != CLOSE:
        assert got[0] == 0x9
    assert close_code(got[1]) == 1009
