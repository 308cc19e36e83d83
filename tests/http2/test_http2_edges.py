"""HTTP/2 streams at their edges: bodiless responses, files, broken handlers,
requests the engine refuses, slow body readers and clients that leave."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.settings
import pytest

from blazeasgi import App, FileResponse, Request, Response
from blazeasgi.engine import http2

from ..conftest import RunningServer
from ..h2client import H2Client, wait_for

pytestmark = pytest.mark.skipif(not http2.AVAILABLE, reason="zttp (the HTTP/2 codec) is not installed")

Serve = Callable[..., RunningServer]
INTERNAL_ERROR = 0x2
SEEN: dict[str, Any] = {}
FILE_SIZE = 200_000


@pytest.fixture(autouse=True)
def clear_seen() -> Iterator[None]:
    SEEN.clear()
    yield


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("h2") / "data.bin"
    path.write_bytes(bytes(range(256)) * (FILE_SIZE // 256) + b"t" * (FILE_SIZE % 256))
    return path


def start(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, **more: Any) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers or [], **more}


def body(data: bytes = b"", more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def make_asgi_app(data_file: Path) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/no-content":
            await send(start(204))
            await send(body(b"ignored"))
        elif path == "/head-only":  # start, then return without a body message
            await send(start(200, [(b"x-only", b"head")]))
        elif path == "/head-with-length":  # a declared length never sent
            await send(start(200, [(b"content-length", b"10")]))
        elif path == "/nothing":
            return
        elif path == "/too-long":
            await send(start(200, [(b"content-length", b"3")]))
            try:
                await send(body(b"12345"))
            except Exception as exc:
                SEEN["error"] = str(exc)
                raise
        elif path == "/too-short":
            await send(start(200, [(b"content-length", b"10")]))
            await send(body(b"123", more=True))
            await send(body(b"45"))
        elif path == "/unfinished":
            await send(start(200))
            await send(body(b"part", more=True))
        elif path == "/pathsend":
            await send(start(200, [(b"content-type", b"application/octet-stream")]))
            await send({"type": "http.response.pathsend", "path": str(data_file)})
        elif path == "/zerocopy":
            await send(start(200))
            with open(data_file, "rb") as file:
                await send(
                    {"type": "http.response.zerocopysend", "file": file, "count": 1000, "more_body": True}
                )
                await send({"type": "http.response.zerocopysend", "file": file, "offset": 1000, "count": 500})
        elif path == "/slow-reader":  # reads its body slowly, a piece at a time
            size = 0
            more = True
            while more:
                await asyncio.sleep(0.02)
                message = await receive()
                if message["type"] == "http.disconnect":
                    SEEN["slow_disconnect"] = True
                    return
                size += len(message["body"])
                more = message["more_body"]
            await send(start(200))
            await send(body(str(size).encode()))
        elif path == "/read-then-answer":
            message = await receive()
            SEEN["first"] = message
            message = await receive()
            SEEN["second"] = message
            await send(start(200))
            await send(body(b"ok"))
        elif path == "/answer-early":  # answers before the request body ends
            await send(start(200))
            await send(body(b"early"))
        elif path == "/after-response":
            await send(start(200))
            await send(body(b"done"))
            SEEN["after"] = await receive()
        elif path == "/hint-late":
            await send(start(200))
            await send({"type": "http.response.early_hint", "links": [b"</a>; rel=preload"]})
            await send(body(b"late"))
        elif path == "/trailers-empty":
            await send(start(200, trailers=True))
            await send(body(b""))
            await send({"type": "http.response.trailers", "headers": []})
        else:
            await send(start(200, [(b"content-type", b"text/plain")]))
            await send(body(b"root"))

    return app


def native_app(data_file: Path) -> App:
    app = App()

    @app.get("/file")
    def file(request: Request) -> FileResponse:
        return FileResponse(str(data_file))

    @app.get("/")
    def index(request: Request) -> Response:
        return Response(b"native", media_type="text/plain")

    @app.get("/raises")
    def raises(request: Request) -> Response:
        raise RuntimeError("sync handler failed")

    return app


@pytest.fixture
def server(serve: Serve, data_file: Path) -> RunningServer:
    return serve(make_asgi_app(data_file))


def client_for(server: RunningServer) -> H2Client:
    return H2Client(server.connect())


# -- bodiless and file responses -------------------------------------------------------------
def test_head_and_no_content(server: RunningServer) -> None:
    client = client_for(server)
    head = client.response(client.request("HEAD", "/"))
    assert (head.status, bytes(head.body), head.header(b"content-length")) == (200, b"", b"4")
    no_content = client.get("/no-content")
    assert (no_content.status, bytes(no_content.body)) == (204, b"")


def test_head_without_body_message(server: RunningServer) -> None:
    client = client_for(server)
    reply = client.get("/head-only")
    assert (reply.status, reply.header(b"x-only"), bytes(reply.body), reply.ended) == (
        200,
        b"head",
        b"",
        True,
    )
    declared = client.get("/head-with-length")
    assert declared.status == 200 and declared.reset == INTERNAL_ERROR


def test_handler_without_response_is_a_500(server: RunningServer) -> None:
    client = client_for(server)
    assert client.get("/nothing").status == 500
    assert client.get("/").status == 200


def test_content_length_mismatch_resets_the_stream(server: RunningServer) -> None:
    client = client_for(server)
    long = client.get("/too-long")
    assert long.reset == INTERNAL_ERROR
    wait_for(lambda: "error" in SEEN)  # (the reset goes out before the handler's send raises)
    assert "Content-Length" in SEEN["error"]
    short = client.get("/too-short")
    assert short.reset == INTERNAL_ERROR
    unfinished = client.get("/unfinished")
    assert (bytes(unfinished.body), unfinished.reset) == (b"part", INTERNAL_ERROR)
    assert client.get("/").status == 200


def test_pathsend_and_zerocopysend(server: RunningServer, data_file: Path) -> None:
    client = client_for(server)
    whole = client.get("/pathsend")
    assert bytes(whole.body) == data_file.read_bytes()
    assert whole.header(b"content-length") == str(FILE_SIZE).encode()
    parts = client.get("/zerocopy")
    assert bytes(parts.body) == data_file.read_bytes()[:1500]


def test_native_file_response_and_failure(serve: Serve, data_file: Path) -> None:
    server = serve(native_app(data_file))
    client = client_for(server)
    reply = client.get("/file")
    assert bytes(reply.body) == data_file.read_bytes()
    assert client.get("/raises").status == 500
    assert bytes(client.get("/").body) == b"native"


def test_hint_between_start_and_body_still_goes_first(server: RunningServer) -> None:
    """The adapter holds http.response.start until the body: nothing final is on
    the wire yet, so the 103 may still precede it."""
    client = client_for(server)
    reply = client.get("/hint-late")
    assert (reply.informational, reply.status, bytes(reply.body)) == ([103], 200, b"late")


def test_empty_trailers(server: RunningServer) -> None:
    client = client_for(server)
    reply = client.get("/trailers-empty", headers=[(b"te", b"trailers")])
    assert reply.ended and reply.status == 200


# -- request bodies --------------------------------------------------------------------------
def test_slow_body_reader_gets_the_whole_body(serve: Serve, data_file: Path) -> None:
    """The stream's window opens as the handler reads (h2flow), a piece at a time."""
    server = serve(make_asgi_app(data_file), read_high_water=16384)
    client = client_for(server)
    stream_id = client.request("POST", "/slow-reader", end=False)
    for _ in range(20):
        client.send(stream_id, b"s" * 16384)
    client.send(stream_id, b"", end=True)
    reply = client.response(stream_id)
    assert bytes(reply.body) == str(20 * 16384).encode()


def test_answer_before_the_body_ends_resets_with_no_error(server: RunningServer) -> None:
    client = client_for(server)
    stream_id = client.request("POST", "/answer-early", end=False)
    client.until(lambda: client.replies[stream_id].ended or client.replies[stream_id].reset is not None)
    client.until(lambda: client.replies[stream_id].reset is not None)
    reply = client.replies[stream_id]
    assert (bytes(reply.body), reply.reset) == (b"early", 0)


def test_receive_after_the_response_is_a_disconnect(server: RunningServer) -> None:
    client = client_for(server)
    assert bytes(client.get("/after-response").body) == b"done"
    # The handler reads on after its last send; the client may see the body first.
    deadline = time.monotonic() + 5
    while "after" not in SEEN:
        assert time.monotonic() < deadline, "receive() after the response never returned"
        time.sleep(0.01)
    assert SEEN["after"] == {"type": "http.disconnect"}


def test_client_reset_while_the_handler_waits_for_body(server: RunningServer) -> None:
    client = client_for(server)
    stream_id = client.request("POST", "/read-then-answer", body=b"first", end=False)
    time.sleep(0.2)
    client.reset(stream_id)
    deadline = time.monotonic() + 5
    while "second" not in SEEN:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert SEEN["second"] == {"type": "http.disconnect"}


# -- what the engine refuses -------------------------------------------------------------------
def test_engine_limits_and_unserved_requests(serve: Serve, data_file: Path) -> None:
    server = serve(make_asgi_app(data_file), max_target_size=100, max_header_count=5)
    client = client_for(server)
    assert client.get("/" + "a" * 200).status == 414
    many = [(b"x-h%d" % i, b"v") for i in range(10)]
    assert client.get("/", headers=many).status == 431
    assert client.get("*").status == 400  # "*" is OPTIONS' only
    assert client.response(client.request("OPTIONS", "*")).status == 200
    upload = client.request("POST", "/" + "a" * 200, end=False)  # refused with its body to come
    assert client.response(upload).status == 414
    assert client.get("/").status == 200


def test_connect_is_not_served(serve: Serve, data_file: Path) -> None:
    """With WebSockets off, extended CONNECT (RFC 8441, WebSockets over HTTP/2) is
    not announced, and a client that sends it anyway gets 501; a plain CONNECT is
    refused by the codec itself (RST_STREAM PROTOCOL_ERROR). (With WebSockets on:
    test_http2_websocket.py.)"""
    client = client_for(serve(make_asgi_app(data_file), ws="none"))
    client.until(lambda: client.conn.remote_settings.max_concurrent_streams < 2**31)
    assert client.conn.remote_settings.enable_connect_protocol == 0
    # h2 sends extended CONNECT only to a server that announced it: pretend it did.
    client.conn.remote_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
    client.conn.remote_settings.acknowledge()
    extended = client.conn.get_next_available_stream_id()
    fields = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http")]
    client.conn.send_headers(extended, [*fields, (b":path", b"/chat"), (b":authority", b"x")])
    client.flush()
    assert client.response(extended).status == 501
    plain = client.conn.get_next_available_stream_id()
    client.conn.send_headers(plain, [(b":method", b"CONNECT"), (b":authority", b"example.com:443")])
    client.flush()
    assert client.response(plain).reset == 0x1
    assert client.get("/").status == 200


# -- clients that leave ----------------------------------------------------------------------
def test_client_goaway_closes_once_streams_end(server: RunningServer) -> None:
    client = client_for(server)
    from hyperframe.frame import GoAwayFrame

    stream_id = client.request("GET", "/slow-reader", body=b"x")
    client.sock.sendall(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())  # h2 would stop reading
    assert client.response(stream_id).status == 200
    client.until(lambda: client.closed)
    assert client.closed


def test_client_goaway_after_its_last_stream_ended_closes(server: RunningServer) -> None:
    """A GOAWAY that arrives once nothing is in flight (a client's Nagle can hold it
    back past a fast response) still ends the connection."""
    client = client_for(server)
    from hyperframe.frame import GoAwayFrame

    assert bytes(client.get("/").body) == b"root"
    client.sock.sendall(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
    client.until(lambda: client.closed)
    assert client.closed


def test_half_close_mid_body_is_a_disconnect(server: RunningServer) -> None:
    client = client_for(server)
    stream_id = client.request("POST", "/read-then-answer", body=b"first", end=False)
    time.sleep(0.2)
    client.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 5
    while "second" not in SEEN:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert SEEN["second"] == {"type": "http.disconnect"}
    assert stream_id == 1


def test_connection_lost_mid_stream(server: RunningServer) -> None:
    client = client_for(server)
    client.request("POST", "/read-then-answer", body=b"first", end=False)
    time.sleep(0.2)
    client.sock.close()
    deadline = time.monotonic() + 5
    while "second" not in SEEN:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert SEEN["second"] == {"type": "http.disconnect"}
    assert server.state.connections == set() or all(
        not isinstance(c, http2.HTTP2Connection) for c in server.state.connections
    )


def test_body_refused_in_the_same_read_leaves_no_stream(run: Callable[[Any], Any], data_file: Path) -> None:
    """HEADERS and a too-large body in one read: 413 before any handler starts,
    and the stream is forgotten (else the connection would never be idle)."""
    import h2.config
    import h2.connection

    from ..conftest import MockConnection

    async def go() -> None:
        conn = MockConnection(make_asgi_app(data_file), max_body_size=1000)
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        client.initiate_connection()
        client.send_headers(
            1, [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]
        )
        client.send_data(1, b"z" * 5000, end_stream=True)
        conn.feed(client.data_to_send())
        protocol = conn.transport.protocol
        assert isinstance(protocol, http2.HTTP2Connection)
        assert protocol.streams == {}
        events = client.receive_data(await conn.settle())
        statuses = [dict(e.headers)[b":status"] for e in events if hasattr(e, "headers") and e.headers]
        assert statuses == [b"413"]

    run(go())
