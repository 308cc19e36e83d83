"""A blocking HTTP/2 test client on the h2 library (the reference implementation).

Drives one socket (plain or TLS) frame by frame, so a test can do what real
clients would not: hold its window shut, reset a stream mid-body, open more
streams than allowed, or send raw bytes.
"""

from __future__ import annotations

import collections
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx

if TYPE_CHECKING:
    from .conftest import RunningServer


@dataclass
class Reply:
    """What one stream got back."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[int] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None  # the server's RST_STREAM error code

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


class H2Client:
    def __init__(self, sock: socket.socket, window: int | None = None, preface: bool = True) -> None:
        """``window``: the client's initial stream window (None: h2's 65,535)."""
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        #: Acknowledge received DATA (send WINDOW_UPDATE) as it arrives.
        self.auto_ack = True
        self.replies: dict[int, Reply] = collections.defaultdict(Reply)
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.events: list[h2.events.Event] = []
        self._buffer = b""
        if window is not None:
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
            )
        if preface:
            self.conn.initiate_connection()
            self.flush()

    # -- sending ------------------------------------------------------------------------
    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
        end: bool = True,
    ) -> int:
        """Open a stream; ``body`` None with ``end`` False leaves the body to come."""
        stream_id = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", method.encode()),
            (b":path", path.encode()),
            (b":scheme", b"http"),
            (b":authority", b"localhost"),
            *(headers or []),
        ]
        self.conn.send_headers(stream_id, fields, end_stream=end and not body)
        if body:
            self.send(stream_id, body, end=end)
        self.flush()
        return stream_id

    def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        """Send body bytes, waiting for window as needed; stops (sending nothing
        more) once the server reset the stream."""
        view = memoryview(data)
        while view:
            window = self.conn.local_flow_control_window(stream_id)
            size = min(window, self.conn.max_outbound_frame_size, len(view))
            if size <= 0:
                if self.replies[stream_id].reset is not None:
                    return
                self.receive()
                continue
            self.conn.send_data(stream_id, bytes(view[:size]))
            view = view[size:]
            self.flush()
        if end:
            self.conn.end_stream(stream_id)
            self.flush()

    def reset(self, stream_id: int, code: int = 8) -> None:
        self.conn.reset_stream(stream_id, code)
        self.flush()

    # -- receiving ------------------------------------------------------------------------
    def receive(self) -> bool:
        """Read once and handle what came; False when the server closed."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        # One frame at a time: h2 stops at a GOAWAY (see _handle), and it would
        # refuse the frames after it in the same read before we could tell it not to.
        buffer = self._buffer + data
        pos = 0
        while len(buffer) - pos >= 9:
            end = pos + 9 + int.from_bytes(buffer[pos : pos + 3], "big")
            if end > len(buffer):
                break
            for event in self.conn.receive_data(buffer[pos:end]):
                self.events.append(event)
                self._handle(event)
            pos = end
        self._buffer = buffer[pos:]
        try:
            self.flush()  # e.g. the SETTINGS ACK h2 owes
        except (ConnectionResetError, BrokenPipeError):
            # The server closed with our bytes unread (an RST): what it sent
            # before that is handled above; the connection is over.
            self.closed = True
            return False
        return True

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.InformationalResponseReceived):
            assert event.stream_id is not None and event.headers is not None
            self.replies[event.stream_id].informational.append(int(dict(event.headers)[b":status"]))
        elif isinstance(event, h2.events.ResponseReceived):
            assert event.stream_id is not None and event.headers is not None
            reply = self.replies[event.stream_id]
            headers = [(bytes(k), bytes(v)) for k, v in event.headers]
            reply.status = int(dict(headers)[b":status"])
            reply.headers = [(k, v) for k, v in headers if not k.startswith(b":")]
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None and event.data is not None
            self.replies[event.stream_id].body += event.data
            if self.auto_ack and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            assert event.stream_id is not None and event.headers is not None
            self.replies[event.stream_id].trailers = [(bytes(k), bytes(v)) for k, v in event.headers]
        elif isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            self.replies[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            self.replies[event.stream_id].reset = int(event.error_code or 0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
            if event.error_code == 0:
                # h2 closes its side at any GOAWAY, but streams up to last_stream_id
                # still complete (RFC 9113 §6.8): keep reading them.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def until(self, done: object, limit: int = 10000) -> None:
        """Read until ``done()`` is true (a callable) or the server closes."""
        assert callable(done)
        for _ in range(limit):
            if done():
                return
            if not self.receive():
                return
        raise AssertionError("gave up waiting")

    def response(self, stream_id: int) -> Reply:
        """Read until the stream ended or was reset, and return what it got."""
        self.until(lambda: self.replies[stream_id].ended or self.replies[stream_id].reset is not None)
        return self.replies[stream_id]

    def get(self, path: str = "/", **kwargs: object) -> Reply:
        return self.response(self.request("GET", path, **kwargs))  # type: ignore[arg-type]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` (state the server thread writes) until true."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def responsive(server: RunningServer) -> bool:
    """Another connection is still served."""
    with httpx.Client(http1=False, http2=True, timeout=5) as client:
        return client.get(server.url("/")).status_code == 200
