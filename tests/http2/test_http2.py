"""HTTP/2 (RFC 9113): every stream an Exchange, both interfaces, h2c and TLS ALPN.

Clients: httpx with ``http2=True`` for the ordinary paths, and the h2 library
frame by frame (tests/h2client.py) for what ordinary clients do not do: shut
windows, resets, too many streams, split prefaces.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import h2.settings
import httpx
import pytest

from blazeasgi.engine import h2limits, h2settings, http2

from ..apps import h2_apps
from ..conftest import RunningServer
from ..h2client import H2Client, responsive, wait_for
from ..helpers.tls import Certs, client_context, tls_server

pytestmark = pytest.mark.skipif(not http2.AVAILABLE, reason="zttp (the HTTP/2 codec) is not installed")

Serve = Callable[..., RunningServer]
NO_ERROR, INTERNAL_ERROR, REFUSED_STREAM = 0x0, 0x2, 0x7


@pytest.fixture(autouse=True)
def clear_seen() -> Iterator[None]:
    h2_apps.SEEN.clear()
    yield
    h2_apps.SEEN.clear()


def h2c(server: RunningServer, **kwargs: Any) -> H2Client:
    return H2Client(server.connect(), **kwargs)


def prior_knowledge() -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=5)


# -- negotiation ---------------------------------------------------------------------------
def test_h2c_prior_knowledge_asgi_scope(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    with prior_knowledge() as client:
        response = client.get(server.url("/?a=1&b=2"))
        again = client.get(server.url("/?c=3"))  # a second stream on the same connection
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    assert response.json() == {
        "http_version": "2",
        "scheme": "http",
        "method": "GET",
        "path": "/",
        "query_string": "a=1&b=2",
        "host": f"127.0.0.1:{server.port}",
        "tls": False,
    }
    assert response.headers["server"] == "blazeasgi" and "date" in response.headers
    assert again.json()["query_string"] == "c=3"


def test_h2c_native(serve: Serve) -> None:
    server = serve(h2_apps.native_app)
    with prior_knowledge() as client:
        response = client.get(server.url("/"))
        upload = client.post(server.url("/upload"), content=b"u" * 300_000)
        missing = client.get(server.url("/missing"))
    assert (response.http_version, response.text) == ("HTTP/2", "native 2 GET")
    assert upload.text == "300000"
    assert missing.status_code == 404


def test_extended_connect_is_not_announced_without_websockets(serve: Serve) -> None:
    """With WebSockets off the server does not serve RFC 8441's extended CONNECT, so
    it must not say it does: a browser that read ENABLE_CONNECT_PROTOCOL = 1 would
    send its WebSockets over HTTP/2 and get a 501 instead of opening them on their
    own connection. (With them on, it is announced: test_http2_websocket.py.)"""
    server = serve(h2_apps.native_app, ws="none")
    client = h2c(server)
    assert client.get("/").status == 200
    settings = client.conn.remote_settings
    assert settings.max_concurrent_streams < 2**31  # the server's SETTINGS did arrive
    assert not settings.enable_connect_protocol


def test_settings_rewrite_keeps_the_other_frames_and_settings() -> None:
    frames = (
        b"\x00\x00\x0c\x04\x00\x00\x00\x00\x00"  # SETTINGS: 0x3 = 100, 0x8 = 1
        + b"\x00\x03\x00\x00\x00\x64\x00\x08\x00\x00\x00\x01"
        + b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"  # SETTINGS ACK
        + b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x0f\x00\x01"  # WINDOW_UPDATE
    )
    out = h2settings.without_setting(frames, h2settings.ENABLE_CONNECT_PROTOCOL)
    assert out == (b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64" + frames[21:])


def test_http11_keeps_working_on_the_same_port(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    with httpx.Client(timeout=5) as client:
        response = client.get(server.url("/"))
    assert response.http_version == "HTTP/1.1"
    assert response.json()["http_version"] == "1.1"
    with prior_knowledge() as client:
        assert client.get(server.url("/")).json()["http_version"] == "2"


def test_http11_request_starting_like_the_preface(serve: Serve) -> None:
    """A first read that could still be the preface ("P") waits for more; "POST"
    then turns it into HTTP/1.1 as usual."""
    server = serve(h2_apps.asgi_app)
    with server.connect() as sock:
        sock.sendall(b"P")
        time.sleep(0.1)
        sock.sendall(b"OST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\n3")


def test_preface_split_across_reads(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    sock = server.connect()
    client = H2Client(sock, preface=False)
    client.conn.initiate_connection()
    data = client.conn.data_to_send()
    sock.sendall(data[:10])
    time.sleep(0.1)
    sock.sendall(data[10:])
    reply = client.get("/")
    assert reply.status == 200
    assert json.loads(reply.body)["http_version"] == "2"
    sock.close()


def test_no_http2_serves_http11_only(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app, http2=False)
    with server.connect() as sock:
        sock.sendall(http2_preface_and_settings())
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 505")


def http2_preface_and_settings() -> bytes:
    import h2.config
    import h2.connection

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    return conn.data_to_send()


@pytest.mark.parametrize("kind", ["asgi", "native"])
def test_tls_alpn_h2(serve: Serve, certs: Certs, kind: str) -> None:
    server = tls_server(serve, certs, h2_apps.asgi_app if kind == "asgi" else h2_apps.native_app)
    ctx = client_context(certs)
    with httpx.Client(http2=True, verify=ctx, timeout=5) as client:
        response = client.get(f"https://localhost:{server.port}/")
    assert response.http_version == "HTTP/2"
    if kind == "asgi":
        body = response.json()
        assert (body["http_version"], body["scheme"], body["tls"]) == ("2", "https", True)
    else:
        assert response.text == "native 2 GET"
    # A client offering only http/1.1 gets it.
    with httpx.Client(http2=False, verify=ctx, timeout=5) as client:
        assert client.get(f"https://localhost:{server.port}/").http_version == "HTTP/1.1"


def test_tls_alpn_selects_h2_first(serve: Serve, certs: Certs) -> None:
    server = tls_server(serve, certs, h2_apps.asgi_app)
    ctx = client_context(certs)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            assert sock.selected_alpn_protocol() == "h2"
            client = H2Client(sock)  # type: ignore[arg-type]
            reply = client.get("/")
    assert reply.status == 200
    assert json.loads(reply.body)["scheme"] == "https"


# -- frameworks ----------------------------------------------------------------------------
def test_fastapi_over_h2c(serve: Serve) -> None:
    server = serve(h2_apps.fastapi_app)
    with prior_knowledge() as client:
        item = client.get(server.url("/items/7?q=x"))
        echo = client.post(server.url("/echo"), content=b"e" * 100_000)
        stream = client.get(server.url("/stream"))
    assert item.json() == {"item_id": 7, "q": "x"}
    assert echo.json() == {"size": 100_000, "http_version": "2"}
    assert stream.text == "".join(f"chunk {i}\n" for i in range(5))


# -- bodies both ways, flow control ----------------------------------------------------
def test_request_and_response_stream_both_ways(serve: Serve) -> None:
    """Each request chunk comes back before the client sends the next one."""
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    stream_id = client.request("POST", "/echo", end=False)
    reply = client.replies[stream_id]
    for i in range(4):
        piece = b"%d" % i * 1000
        client.send(stream_id, piece)
        client.until(lambda n=i: len(reply.body) >= (n + 1) * 1000)  # type: ignore[misc]
    client.send(stream_id, b"", end=True)
    client.response(stream_id)
    assert reply.status == 200
    assert bytes(reply.body) == b"".join(b"%d" % i * 1000 for i in range(4))


def test_large_upload_and_download(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    upload = client.response(client.request("POST", "/count", body=b"b" * (3 << 20)))
    assert bytes(upload.body) == str(3 << 20).encode()
    download = client.get("/stream?n=64")  # 4 MiB, far past every initial window
    assert len(download.body) == 64 * h2_apps.CHUNK


def test_zero_window_reader_costs_bounded_memory(serve: Serve) -> None:
    """A client that never opens its window: the handler waits once what the
    codec holds for the stream passes write_high_water, instead of handing the
    server its whole 8 MiB body. Without that wait it would."""
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    client.auto_ack = False
    stream_id = client.request("GET", "/stream?n=128")
    client.until(lambda: len(client.replies[stream_id].body) >= 65535)  # the initial window
    time.sleep(0.5)
    sent = h2_apps.SEEN["sent"]
    # initial window (64 KiB) + write_high_water (64 KiB) + one write (64 KiB)
    assert sent <= 4 * h2_apps.CHUNK, sent
    client.auto_ack = True
    reply = client.replies[stream_id]
    client.conn.acknowledge_received_data(len(reply.body), stream_id)
    client.flush()
    client.response(stream_id)
    assert len(reply.body) == 128 * h2_apps.CHUNK
    assert h2_apps.SEEN["sent"] == 128 * h2_apps.CHUNK


def test_expect_100_continue(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    stream_id = client.request("POST", "/count", headers=[(b"expect", b"100-continue")], end=False)
    client.until(lambda: 100 in client.replies[stream_id].informational)
    client.send(stream_id, b"12345", end=True)
    reply = client.response(stream_id)
    assert (reply.status, bytes(reply.body)) == (200, b"5")


def test_request_body_limit(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app, max_body_size=1000)
    client = h2c(server)
    reply = client.response(client.request("POST", "/count", body=b"z" * 5000))
    assert reply.status == 413
    assert client.get("/").status == 200  # the connection goes on
    (conn,) = server.state.connections
    assert isinstance(conn, http2.HTTP2Connection)
    wait_for(lambda: conn.streams == {})  # the refused stream is not left open


# -- resets and failures --------------------------------------------------------------------
def test_client_reset_is_a_disconnect_to_the_handler(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    stream_id = client.request("GET", "/wait-disconnect")
    client.until(lambda: bytes(client.replies[stream_id].body) == b"waiting")
    client.reset(stream_id)
    wait_for(lambda: h2_apps.SEEN.get("disconnected", False))
    assert client.get("/").status == 200  # other streams are unaffected


def test_client_reset_fails_the_writer(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    client.auto_ack = False
    stream_id = client.request("GET", "/stream?n=128")
    client.until(lambda: len(client.replies[stream_id].body) >= 65535)
    client.reset(stream_id)
    wait_for(lambda: h2_apps.SEEN.get("send_failed", False))
    client.auto_ack = True
    client.conn.increment_flow_control_window(len(client.replies[stream_id].body))  # the connection's
    client.flush()
    assert client.get("/").status == 200


def test_handler_failure_before_the_response_is_a_500(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    reply = client.get("/fail-before")
    assert reply.status == 500
    assert client.get("/").status == 200


def test_handler_failure_mid_body_resets_the_stream(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    reply = client.get("/fail-after")
    assert reply.status == 200
    assert reply.reset == INTERNAL_ERROR
    assert not reply.ended
    assert client.get("/").status == 200  # a stream error, not a connection error


# -- limits ----------------------------------------------------------------------------------
def test_concurrent_streams_past_the_limit_are_refused(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    client.until(lambda: client.conn.remote_settings.max_concurrent_streams < 2**31)
    limit = client.conn.remote_settings.max_concurrent_streams
    assert limit == 128
    # Pretend not to have seen the limit (h2 would refuse to open more).
    client.conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 1000
    client.conn.remote_settings.acknowledge()
    ids = [client.request("GET", "/slow?s=0.3") for _ in range(limit + 10)]
    for stream_id in ids:
        client.response(stream_id)
    refused = [i for i in ids if client.replies[i].reset == REFUSED_STREAM]
    served = [i for i in ids if client.replies[i].status == 200]
    assert len(refused) == 10
    assert len(served) == limit


# -- informational responses and trailers ---------------------------------------------------
def test_early_hints_and_trailers(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    hinted = client.get("/hints")
    assert hinted.informational == [103]
    assert bytes(hinted.body) == b"hinted"
    trailed = client.get("/trailers", headers=[(b"te", b"trailers")])
    assert bytes(trailed.body) == b"body"
    assert trailed.trailers == [(b"x-checksum", b"abc")]


# -- logging and shutdown -------------------------------------------------------------------
def test_access_log_says_http_2_0(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="blazeasgi.access")
    server = serve(h2_apps.asgi_app, access_log=True)
    with prior_knowledge() as client:
        client.get(server.url("/?x=1"))
    wait_for(lambda: any(r.name == "blazeasgi.access" for r in caplog.records))
    lines = [r.getMessage() for r in caplog.records if r.name == "blazeasgi.access"]
    assert any('"GET /?x=1 HTTP/2.0" 200' in line for line in lines), lines


def test_graceful_shutdown_goaway_and_in_flight_streams_finish(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    assert client.get("/").status == 200
    stream_id = client.request("GET", "/slow?s=0.5")
    time.sleep(0.1)
    server.loop.call_soon_threadsafe(server.server.request_stop)
    reply = client.response(stream_id)
    assert (reply.status, bytes(reply.body)) == (200, b"done")
    client.until(lambda: client.goaway is not None)
    assert client.goaway is not None
    assert client.goaway.error_code == NO_ERROR
    assert client.goaway.last_stream_id == stream_id
    client.until(lambda: client.closed)
    assert client.closed


def test_shutdown_does_not_count_a_lingering_connection_as_unfinished(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """An idle connection is closed at shutdown with linger (engine.transports): it
    reads on for the client's FIN. A client that never closes it is cut off when
    the grace ends, without a warning that a connection was unfinished."""
    caplog.set_level(logging.WARNING, logger="blazeasgi.error")
    server = serve(h2_apps.asgi_app, graceful_shutdown_timeout=0.5)
    client = h2c(server)
    assert client.get("/").status == 200
    server.loop.call_soon_threadsafe(server.server.request_stop)
    client.until(lambda: client.closed)  # GOAWAY, then the server's FIN
    assert client.goaway is not None and client.goaway.error_code == NO_ERROR
    wait_for(server.loop.is_closed, timeout=3)  # the server has stopped
    assert "Graceful shutdown timed out" not in caplog.text


def test_stream_after_goaway_is_refused(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    slow = client.request("GET", "/slow?s=1")
    time.sleep(0.1)
    server.loop.call_soon_threadsafe(server.server.request_stop)
    client.until(lambda: client.goaway is not None)
    late = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        late,
        [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")],
        end_stream=True,
    )
    client.flush()
    assert client.response(slow).status == 200
    assert client.replies[late].status == 0  # never served


# -- attacks (each guard has a test that fails without it) ------------------------------------
def test_rapid_reset_closes_the_connection(serve: Serve) -> None:
    """CVE-2023-44487: streams opened and reset at once. zttp's flood guard ends
    the connection with GOAWAY ENHANCE_YOUR_CALM; no handler runs for them."""
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    for _ in range(1000):
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            stream_id,
            [(b":method", b"GET"), (b":path", b"/slow"), (b":scheme", b"http"), (b":authority", b"x")],
        )
        client.conn.reset_stream(stream_id)
    try:
        client.flush()
    except OSError:
        pass  # closed while sending: the guard acted
    client.until(lambda: client.closed or client.goaway is not None)
    assert client.goaway is not None and client.goaway.error_code == 0xB  # ENHANCE_YOUR_CALM
    assert responsive(server)


def test_continuation_flood_closes_the_connection(serve: Serve) -> None:
    """CVE-2024-27316 class: a header block that never ends, CONTINUATION after
    CONTINUATION. zttp bounds it and ends the connection."""
    from hyperframe.frame import ContinuationFrame, HeadersFrame

    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    headers = HeadersFrame(1)
    headers.data = b"\x82"  # :method GET, then no END_HEADERS
    flood = ContinuationFrame(1, data=b"\x40\x03abc\x03def").serialize() * 20000
    try:
        client.sock.sendall(headers.serialize() + flood)
    except OSError:
        pass
    client.until(lambda: client.closed or client.goaway is not None)
    assert client.goaway is not None or client.closed
    assert responsive(server)


@pytest.mark.parametrize("frame", ["ping", "settings"])
def test_control_frame_flood_from_a_non_reader_is_bounded(serve: Serve, frame: str) -> None:
    """PINGs (or SETTINGS) sent without reading the ACKs the codec answers with.
    The connection stops reading while its writes are backed up, so the ACKs
    waiting in the server stay near write_high_water; without that guard the
    server reads all 16 MB and buffers megabytes of ACKs."""
    from hyperframe.frame import PingFrame, SettingsFrame

    server = serve(h2_apps.asgi_app)
    sock = server.slow_reader()
    H2Client(sock)  # the preface and SETTINGS
    one = (
        PingFrame(0, opaque_data=b"12345678").serialize()
        if frame == "ping"
        else SettingsFrame(0, settings={4: 65535}).serialize()
    )
    flood = memoryview(one * (16_000_000 // len(one)))
    sock.setblocking(False)
    deadline = time.monotonic() + 3
    while flood and time.monotonic() < deadline:
        try:
            flood = flood[sock.send(flood[:262144]) :]
        except BlockingIOError:
            time.sleep(0.01)
    time.sleep(0.3)
    buffered = [c.transport.get_write_buffer_size() for c in list(server.state.connections)]
    assert buffered and max(buffered) < 1 << 20, buffered
    assert responsive(server)
    sock.close()


def test_hpack_bomb_closes_the_connection(serve: Serve) -> None:
    """A 4 KB field put in the HPACK table once, then named 200 times by its
    1-byte index: 800 KB of header list from a 250-byte block. zttp's header-list
    limit (64 KiB) ends the connection before anything of that size is built."""
    import hpack
    from hyperframe.frame import HeadersFrame

    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    encoder = hpack.Encoder()
    base = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]
    ends = ["END_HEADERS", "END_STREAM"]
    first = HeadersFrame(1, flags=ends, data=encoder.encode([*base, (b"x-big", b"a" * 4000)]))
    bomb = HeadersFrame(3, flags=ends, data=encoder.encode(base) + bytes([0x80 | 62]) * 200)
    client.sock.sendall(first.serialize() + bomb.serialize())
    client.until(lambda: client.closed or client.goaway is not None)
    assert client.goaway is not None and client.goaway.error_code == 0xB
    assert responsive(server)


def test_idle_connection_gets_goaway_after_keep_alive_timeout(serve: Serve) -> None:
    server = serve(h2_apps.asgi_app, keep_alive_timeout=1)
    client = h2c(server)
    assert client.get("/").status == 200
    started = time.monotonic()
    client.until(lambda: client.closed)
    assert client.goaway is not None and client.goaway.error_code == NO_ERROR
    assert 0.9 <= time.monotonic() - started < 4


def test_stream_budget_ends_the_connection_gracefully(serve: Serve) -> None:
    """zttp ends a connection at its 4,097th stream with ENHANCE_YOUR_CALM,
    dropping the streams in flight. The engine says GOAWAY (NO_ERROR) first, after
    MAX_STREAMS_PER_CONNECTION streams, all of them answered; the client then
    reconnects. Without the budget this client would get ENHANCE_YOUR_CALM."""
    server = serve(h2_apps.asgi_app)
    client = h2c(server)
    budget = h2limits.MAX_STREAMS_PER_CONNECTION
    served = 0
    while client.goaway is None and not client.closed and served < 4200:
        ids = [client.request("GET", "/") for _ in range(10)]
        for stream_id in ids:
            if client.response(stream_id).status == 200:
                served += 1
            del client.replies[stream_id]
    assert client.goaway is not None and client.goaway.error_code == NO_ERROR
    assert served >= budget
    client.until(lambda: client.closed)
    assert responsive(server)


# -- real clients --------------------------------------------------------------------------
def curl_http2() -> bool:
    try:
        out = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "HTTP2" in out


@pytest.mark.skipif(not curl_http2(), reason="no curl with HTTP/2")
def test_curl_prior_knowledge_and_alpn(serve: Serve, certs: Certs, tmp_path: Any) -> None:
    plain = serve(h2_apps.asgi_app)
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-w", "\\n%{http_version}", plain.url("/?via=curl")],
        capture_output=True,
        text=True,
        timeout=20,
    )
    body, version = out.stdout.rsplit("\n", 1)
    assert version == "2"
    assert json.loads(body)["query_string"] == "via=curl"
    tls = tls_server(serve, certs, h2_apps.asgi_app)
    ca = tmp_path / "ca.pem"
    certs.ca.cert_pem.write_to_path(str(ca))
    out = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(ca), "-w", "\\n%{http_version}",
         f"https://localhost:{tls.port}/"],
        capture_output=True,
        text=True,
        timeout=20,
    )  # fmt: skip
    body, version = out.stdout.rsplit("\n", 1)
    assert version == "2"
    assert json.loads(body)["scheme"] == "https"
