"""HTTP/2 limits, floods, request timeouts and upload backpressure (issue 15).

Each guard has a test that fails without it; the engine's side is in
blazeasgi/engine/h2limits.py (limits, timeouts) and h2flow.py (the stream window
that opens only as a handler reads). The other HTTP/2 attacks (rapid reset,
CONTINUATION and control-frame floods, HPACK bomb, too many streams, the stream
budget) are in test_http2.py.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import h2.exceptions
import pytest
from hyperframe.frame import DataFrame, PingFrame

from blazeasgi.engine import h2limits, http2

from ..apps import h2_apps
from ..conftest import RunningServer
from ..h2client import H2Client, responsive, wait_for

pytestmark = pytest.mark.skipif(not http2.AVAILABLE, reason="zttp (the HTTP/2 codec) is not installed")

Serve = Callable[..., RunningServer]
NO_ERROR, FLOW_CONTROL_ERROR, ENHANCE_YOUR_CALM = 0x0, 0x3, 0xB
#: The stream window the server's peer starts with (RFC 9113's default).
WINDOW = 65535
GET = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]


@pytest.fixture(autouse=True)
def clear_seen() -> Iterator[None]:
    h2_apps.SEEN.clear()
    yield
    h2_apps.SEEN["read"] = True  # a /read-later handler still waiting ends
    time.sleep(0.05)
    h2_apps.SEEN.clear()


def h2c(server: RunningServer) -> H2Client:
    return H2Client(server.connect())


def the_connection(server: RunningServer) -> http2.HTTP2Connection:
    (conn,) = [c for c in list(server.state.connections) if isinstance(c, http2.HTTP2Connection)]
    return conn


# -- floods and limits -------------------------------------------------------------------------
def test_empty_data_flood_closes_the_connection(serve: Serve) -> None:
    """CVE-2019-9518: zero-length DATA frames without END_STREAM, each a parse for
    the server and nothing the codec reports. Past MAX_QUIET_BYTES of them the
    connection ends with GOAWAY ENHANCE_YOUR_CALM; without the guard the server
    parses them for as long as they come, and this client waits in vain."""
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    stream_id = client.request("POST", "/count", end=False)
    flood = DataFrame(stream_id).serialize() * (4 * h2limits.MAX_QUIET_BYTES // 9)
    try:
        client.sock.sendall(flood)
    except OSError:
        pass  # closed while sending: the guard acted
    client.until(lambda: client.closed or client.goaway is not None)
    assert client.goaway is not None and client.goaway.error_code == ENHANCE_YOUR_CALM
    assert responsive(server)


def test_highest_stream_id_ends_the_connection_gracefully(serve: Serve) -> None:
    """Stream-ID exhaustion (RFC 9113 §5.1.1): a client that used stream 2^31-1 can
    open no other on this connection. The server answers it, says GOAWAY
    (NO_ERROR, that stream the last) and closes, so the client reconnects; without
    that the connection would sit open until the keep-alive timeout (60 s here)."""
    server = serve(h2_apps.asgi_app, keep_alive_timeout=60)
    client = h2c(server)
    last = h2limits.LAST_STREAM_ID
    client.conn.send_headers(last, GET, end_stream=True)
    client.flush()
    assert client.response(last).status == 200
    client.until(lambda: client.closed)
    assert client.goaway is not None
    assert (client.goaway.error_code, client.goaway.last_stream_id) == (NO_ERROR, last)
    # Frames the client sends meanwhile (here a PING) meet a half-closed socket that
    # still reads, not a reset, which could discard the response unread.
    for _ in range(3):
        client.sock.sendall(PingFrame(0, b"12345678").serialize())
        time.sleep(0.1)
    client.sock.shutdown(socket.SHUT_WR)
    wait_for(lambda: not server.state.connections, timeout=2)
    assert responsive(server)


def test_body_limit_refuses_one_stream_while_another_uploads(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """max_body_size is per stream: the stream past it gets 413 and is reset, the
    upload beside it on the same connection completes. The handler reading the
    refused body sees a disconnect, and nothing is logged as its error."""
    caplog.set_level(logging.ERROR, logger="blazeasgi.error")
    server = serve(h2_apps.asgi_app, max_body_size=100_000)
    client = h2c(server)
    beside = client.request("POST", "/count", body=b"a" * 50_000, end=False)
    large = client.request("POST", "/count", end=False)
    try:
        client.send(large, b"b" * 120_000, end=True)
    except h2.exceptions.StreamClosedError:
        pass  # refused while sending
    assert client.response(large).status == 413
    client.send(beside, b"c" * 50_000, end=True)
    assert bytes(client.response(beside).body) == b"100000"
    assert [r.getMessage() for r in caplog.records if r.name == "blazeasgi.error"] == []


def test_header_list_past_max_head_size_is_431_for_that_stream(serve: Serve) -> None:
    """A header list over Config.max_head_size (counted as RFC 9113 §6.5.2 does)
    gets 431 on its stream; a stream in flight beside it and later ones are served.
    (Past zttp's own 64 KiB the codec ends the connection: test_http2's HPACK bomb.)"""
    server = serve(h2_apps.asgi_app, max_head_size=8192)
    client = h2c(server)
    beside = client.request("GET", "/slow?s=0.5")
    assert client.get("/", headers=[(b"x-big", b"v" * 10_000)]).status == 431
    assert client.response(beside).status == 200
    assert client.get("/", headers=[(b"x-fits", b"v" * 4000)]).status == 200


@pytest.mark.parametrize("app", ["asgi", "native"])
def test_non_ascii_path_is_400_for_that_stream(
    serve: Serve, caplog: pytest.LogCaptureFixture, app: str
) -> None:
    """A :path with a byte outside ASCII (fuzz/atheris_h2.py found it): zttp passes
    it on, and both interfaces refuse it (ProtocolError 400) as they decode the path.
    That is the stream's answer, and nothing is logged; the connection goes on.
    It was taken for a handler's failure: a 500 and an "Exception in handler" logged."""
    caplog.set_level(logging.ERROR, logger="blazeasgi.error")
    server = serve(h2_apps.asgi_app if app == "asgi" else h2_apps.native_app)
    client = h2c(server)
    stream_id = client.conn.get_next_available_stream_id()
    fields = [(b":method", b"GET"), (b":path", b"/st\xe4?n=2"), (b":scheme", b"http"), (b":authority", b"x")]
    client.conn.send_headers(stream_id, fields, end_stream=True)
    client.flush()
    assert client.response(stream_id).status == 400
    assert client.get("/").status == 200
    assert [r.getMessage() for r in caplog.records if r.name == "blazeasgi.error"] == []


# -- request timeouts --------------------------------------------------------------------------
def test_stalled_request_body_times_out_with_408(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    """A request whose body stops coming while the client could send it is answered
    408 after head_timeout, as a stalled HTTP/1.1 head is; the connection goes on.
    The handler waiting for the body sees a disconnect (no error logged: it is the
    client's doing). Without the timeout the stream would wait for ever."""
    caplog.set_level(logging.ERROR, logger="blazeasgi.error")
    server = serve(h2_apps.asgi_app, head_timeout=1)
    client = h2c(server)
    stalled = client.request("POST", "/count", body=b"12345", end=False)
    assert client.response(stalled).status == 408
    assert client.get("/").status == 200
    assert [r.getMessage() for r in caplog.records if r.name == "blazeasgi.error"] == []


def test_connection_whose_streams_stalled_idles_out(serve: Serve) -> None:
    """Open streams whose requests stalled keep a connection from being idle only
    until they time out; then it closes after keep_alive_timeout (GOAWAY NO_ERROR)."""
    server = serve(h2_apps.asgi_app, head_timeout=1, keep_alive_timeout=1)
    client = h2c(server)
    stalled = [client.request("POST", "/count", end=False) for _ in range(3)]
    client.until(lambda: client.closed)
    assert [client.replies[i].status for i in stalled] == [408] * 3
    assert client.goaway is not None and client.goaway.error_code == NO_ERROR


def test_answered_stream_is_not_timed(serve: Serve) -> None:
    """/echo answers with the first chunk: a request body that then pauses past
    head_timeout belongs to a stream going both ways (gRPC, chat), not a stall."""
    server = serve(h2_apps.asgi_app, head_timeout=1)
    client = h2c(server)
    stream_id = client.request("POST", "/echo", body=b"one", end=False)
    client.until(lambda: bytes(client.replies[stream_id].body) == b"one")
    time.sleep(2.5)
    client.send(stream_id, b"two", end=True)
    reply = client.response(stream_id)
    assert (reply.status, bytes(reply.body), reply.reset) == (200, b"onetwo", None)


# -- upload backpressure -----------------------------------------------------------------------
def send_what_the_window_takes(client: H2Client, stream_id: int, seconds: float) -> int:
    """Send body on ``stream_id`` whenever its window allows, for ``seconds``."""
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        size = min(client.conn.local_flow_control_window(stream_id), client.conn.max_outbound_frame_size)
        if size > 0:
            client.conn.send_data(stream_id, b"u" * size)
            client.flush()
            sent += size
            continue
        client.sock.settimeout(0.2)
        try:
            client.receive()  # a WINDOW_UPDATE, if the server sends one
        except TimeoutError:
            pass
        finally:
            client.sock.settimeout(5)
    return sent


def test_unread_upload_holds_one_window_while_other_streams_flow(serve: Serve) -> None:
    """A handler that does not read its body: the server keeps that stream's window
    shut, so it buffers one window (64 KiB), not the upload; other streams on the
    connection upload (far past the connection's window) and download meanwhile.
    When the handler reads, the window opens as it consumes. The stall is the
    server's, so head_timeout (1 s) does not end it. Without the held credit the
    codec reopens the window as it parses and the client sends on."""
    server = serve(h2_apps.asgi_app, head_timeout=1)
    client = h2c(server)
    held = client.request("POST", "/read-later", end=False)
    assert send_what_the_window_takes(client, held, 2.5) == WINDOW
    assert the_connection(server).streams[held].buffered == WINDOW
    upload = client.response(client.request("POST", "/count", body=b"o" * 300_000))
    assert bytes(upload.body) == b"300000"
    assert client.get("/").status == 200
    h2_apps.SEEN["read"] = True
    client.send(held, b"u" * 200_000, end=True)
    reply = client.response(held)
    assert (reply.status, bytes(reply.body)) == (200, str(WINDOW + 200_000).encode())


def test_data_past_the_stream_window_resets_the_stream(serve: Serve) -> None:
    """A client that sends past the window the server gave the stream (the codec
    would take it: its own idea of the window is larger) gets RST_STREAM
    FLOW_CONTROL_ERROR on that stream, and the connection goes on."""
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    held = client.request("POST", "/read-later", end=False)
    client.send(held, b"u" * WINDOW)
    client.sock.sendall(DataFrame(held, data=b"x" * 1000).serialize())  # h2 would not
    assert client.response(held).reset == FLOW_CONTROL_ERROR
    assert client.get("/").status == 200
