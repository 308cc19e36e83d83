"""Engine lifecycle: idle and head timeouts, graceful shutdown, max_connections,
clients that go away."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct
import threading
import time
from typing import Any

import pytest

from blazeasgi import App, Request, Response, StreamingResponse
from blazeasgi.engine.connection import HTTPConnection

from ..conftest import MockConnection, MockTransport
from ..helpers.http import NO_DEFAULTS, Client, closed_soon, get, n_responses, parse_all, pump, wait_for

#: Closed loops collected after each test, in this thread (conftest.collect_garbage).
pytestmark = pytest.mark.usefixtures("collect_garbage")


app = App()
release = threading.Event()
started = threading.Event()
events: list[str] = []


@app.get("/")
def index(request: Request) -> Response:
    return Response(b"hi", media_type="text/plain")


@app.get("/slow")
async def slow(request: Request) -> Response:
    started.set()
    while not release.is_set():
        await asyncio.sleep(0.01)
    return Response(b"slow done")


@app.get("/forever")
async def forever(request: Request) -> Response:
    started.set()
    await asyncio.sleep(3600)
    return Response(b"never")


@app.post("/read")
async def read(request: Request) -> Response:
    started.set()
    try:
        body = await request.body()
    except Exception as exc:
        events.append(f"read failed: {type(exc).__name__}")
        raise
    return Response(str(len(body)).encode())


@app.get("/sleepy")
async def sleepy(request: Request) -> Response:
    started.set()
    await asyncio.sleep(0.2)
    events.append("sleepy answered")
    return Response(b"late")


@app.get("/endless")
def endless(request: Request) -> StreamingResponse:
    async def gen() -> Any:
        started.set()
        try:
            while True:
                yield b"x" * 65536
                await asyncio.sleep(0)
        finally:
            events.append("endless finalized")

    return StreamingResponse(gen())


@pytest.fixture(autouse=True)
def _reset() -> None:
    release.clear()
    started.clear()
    events.clear()


def serve_with_thread(serve: Any, served: Any, **config: Any) -> tuple[Any, threading.Thread]:
    """serve(), plus the server's thread, to join after stopping it by hand."""
    before = set(threading.enumerate())
    srv = serve(served, **config)
    (thread,) = set(threading.enumerate()) - before
    return srv, thread


def stop(srv: Any, thread: threading.Thread) -> None:
    srv.loop.call_soon_threadsafe(srv.server.request_stop)
    thread.join(10)
    assert not thread.is_alive()
    # A handler abandoned in the closed loop is finalised on collection, which logs
    # a traceback; do it now rather than inside pytest's own ast.parse (CPython
    # 3.11's AST builder is not re-entrant).
    gc.collect()


def app_errors(caplog: pytest.LogCaptureFixture, path: str) -> list[logging.LogRecord]:
    """Error records about ``path`` (other tests' loops may log while being collected)."""
    return [
        r
        for r in caplog.records
        if r.name.startswith("blazeasgi") and r.levelno >= logging.ERROR and path in r.getMessage()
    ]


# -- timeouts ------------------------------------------------------------------------------


def test_idle_keep_alive_connection_is_closed(serve) -> None:
    srv = serve(app, keep_alive_timeout=1)
    with srv.connect(timeout=5) as sock, srv.connect(timeout=5):
        client = Client(sock)
        client.send(get("/"))
        assert client.response().body == b"hi"
        client.send(get("/"))  # still open right after a response
        assert client.response().body == b"hi"
        assert client.is_closed(timeout=4)  # closed without a response
        # Nor does it hold the one that never sent anything: on Linux the kernel
        # keeps that until its first bytes (engine.server.defer_accept), elsewhere
        # it is closed like the other.
        assert wait_for(lambda: not srv.state.connections)


def test_request_head_timeout_sends_408(serve) -> None:
    srv = serve(app, head_timeout=1, keep_alive_timeout=1)
    with (
        srv.connect(timeout=5) as partial,
        srv.connect(timeout=5) as second,
        srv.connect(timeout=5) as uploading,
    ):
        slow_client = Client(partial)
        slow_client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow")
        # the second request head on a keep-alive connection is timed too
        second_client = Client(second)
        second_client.send(get("/"))
        assert second_client.response().body == b"hi"
        second_client.send(b"GET / HTTP/1.1\r\n")
        up = Client(uploading)
        up.send(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")

        for client in (slow_client, second_client):
            resp = client.response()
            assert resp.status == 408 and resp.closes
            assert client.is_closed()

        # a complete head with a slow body is neither head- nor idle-timed out
        time.sleep(0.5)
        up.send(b"56789")
        resp = up.response()
        assert (resp.status, resp.body) == (200, b"10")
        assert not resp.closes


def test_head_timeout_over_mock_sweep(run) -> None:
    """The sweep's verdict on a half-sent head, byte-exact."""

    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, head_timeout=1, **NO_DEFAULTS)
        conn.feed(b"GET / HTTP/1.1\r\nHo")
        await conn.settle()
        conn.protocol.timeout_head()  # what Server._on_tick does after head_timeout
        out = await conn.settle()
        return out, await closed_soon(conn)

    out, closed = run(go())
    assert out == (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 16\r\nconnection: close\r\n\r\nRequest Timeout\n"
    )
    assert closed


# -- graceful shutdown -----------------------------------------------------------------------


def test_graceful_shutdown(serve) -> None:
    srv = serve(app, graceful_shutdown_timeout=10)
    busy_sock = srv.connect(timeout=5)
    idle_sock = srv.connect(timeout=5)
    try:
        busy, idle = Client(busy_sock), Client(idle_sock)
        idle.send(get("/"))
        assert idle.response().body == b"hi"
        busy.send(get("/slow"))
        assert started.wait(3)

        srv.loop.call_soon_threadsafe(srv.server.request_stop)
        assert idle.is_closed(timeout=3)  # idle connections are closed at once

        # new connections are refused while the slow request finishes
        def refused() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", srv.port), timeout=1) as s:
                    s.settimeout(1)
                    try:
                        data = s.recv(4096)
                    except (ConnectionResetError, TimeoutError):
                        data = b""
                    assert b" 200 " not in data
            except ConnectionRefusedError:
                return True
            return False

        assert wait_for(refused, 3)

        release.set()
        resp = busy.response()
        assert (resp.status, resp.body) == (200, b"slow done")
        assert resp.closes
        assert busy.is_closed()
    finally:
        release.set()
        busy_sock.close()
        idle_sock.close()


def test_graceful_shutdown_timeout_cuts_stuck_requests(serve, caplog) -> None:
    srv, thread = serve_with_thread(serve, app, graceful_shutdown_timeout=0.3)
    with srv.connect(timeout=5) as sock, caplog.at_level(logging.WARNING, logger="blazeasgi.error"):
        client = Client(sock)
        client.send(get("/forever"))
        assert started.wait(3)
        stop(srv, thread)
        assert client.read_until_close(timeout=5) == b""  # cut without a response
    assert "Graceful shutdown timed out; closing 1 connection(s)" in caplog.text


# -- max_connections -----------------------------------------------------------------------


def test_max_connections(serve) -> None:
    srv = serve(app, max_connections=1)
    first = srv.connect(timeout=3)
    try:
        client = Client(first)
        client.send(get("/"))
        assert client.response().body == b"hi"

        with srv.connect(timeout=3) as extra:
            over = Client(extra)
            over.send(get("/"))  # the listener hands connections over with their first bytes
            resp = over.response()
            assert resp.status == 503 and resp.closes
            assert over.is_closed()

        client.send(get("/"))  # the admitted connection is unaffected
        assert client.response().body == b"hi"
    finally:
        first.close()

    def served() -> bool:
        with srv.connect(timeout=3) as sock:
            c = Client(sock)
            c.send(get("/"))
            try:
                return c.response().status == 200
            except AssertionError:
                return False  # got 503 + close: the old slot is not free yet

    assert wait_for(served, 3)


def test_max_connections_mock(run) -> None:
    async def go() -> tuple[bytes, bool, bytes]:
        first = MockConnection(app, max_connections=1, **NO_DEFAULTS)
        # a second connection on the same server state
        transport = MockTransport()
        protocol = transport.protocol = HTTPConnection(first.state)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        await first.settle()
        out = transport.take()
        first.feed(get("/"))
        return out, transport.closed, await first.settle()

    out, closed, first_out = run(go())
    assert out == (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 20\r\nconnection: close\r\n\r\nService Unavailable\n"
    )
    assert closed
    assert parse_all(first_out)[0][0].body == b"hi"


def test_closed_connection_is_freed_without_the_cyclic_gc(run) -> None:
    # With the cyclic GC off, a connection that served its request and closed is
    # gone as soon as nothing refers to it: no cycle (its parser holds its
    # callbacks) keeps it, and its request's objects, alive until a collection.
    def live_connections() -> int:
        return sum(type(o) is HTTPConnection for o in gc.get_objects())

    async def go() -> tuple[bytes, int]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        out = await conn.settle()
        assert conn.transport.closed
        conn.transport.protocol = conn.protocol = None
        return out, live_connections()

    gc.collect()
    before = live_connections()
    gc.disable()
    try:
        out, after = run(go())
    finally:
        gc.enable()
    assert parse_all(out)[0][0].body == b"hi"
    assert after == before


# -- clients that go away --------------------------------------------------------------------


def _still_serves(srv: Any) -> None:
    with srv.connect(timeout=3) as sock:
        client = Client(sock)
        client.send(get("/"))
        assert client.response().body == b"hi"


def test_disconnect_mid_head(serve, caplog) -> None:
    srv = serve(app)
    with caplog.at_level(logging.ERROR):
        with srv.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half")
        _still_serves(srv)
        assert wait_for(lambda: len(srv.state.connections) == 0)
    assert not app_errors(caplog, "GET")


def test_reset_mid_body(serve, caplog) -> None:
    srv = serve(app)
    with caplog.at_level(logging.ERROR):
        sock = srv.connect()
        sock.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        assert started.wait(3)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
        assert wait_for(lambda: events == ["read failed: ClientDisconnected"])
        _still_serves(srv)
        assert wait_for(lambda: len(srv.state.connections) == 0)
    assert not app_errors(caplog, "/read")


def test_close_mid_body(serve) -> None:
    srv, thread = serve_with_thread(serve, app, graceful_shutdown_timeout=0.3)
    with srv.connect() as sock:
        sock.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        assert started.wait(3)
    # the body can never complete: the handler must be told and the connection
    # released
    told = wait_for(lambda: events == ["read failed: ClientDisconnected"], 1.5)
    released = wait_for(lambda: len(srv.state.connections) == 0, 0.5)
    stop(srv, thread)
    assert told and released


def test_eof_mid_body_mock(run) -> None:
    async def go() -> tuple[list[str], bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01")
        await conn.settle()
        conn.protocol.eof_received()
        await conn.settle()
        result = list(events), await closed_soon(conn, 0.3)
        conn.protocol.connection_lost(None)  # let a stuck handler end either way
        await conn.settle()
        return result

    seen, closed = run(go())
    assert seen == ["read failed: ClientDisconnected"]
    assert closed


def test_eof_after_complete_request_mock(run) -> None:
    async def go() -> tuple[bytes, bool]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n01")
        conn.protocol.eof_received()
        out = await pump(conn, n_responses(1))
        return out, await closed_soon(conn)

    out, closed = run(go())
    assert out == b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n2"
    assert closed


def test_disconnect_while_handler_runs(serve, caplog) -> None:
    srv = serve(app)
    with caplog.at_level(logging.ERROR):
        with srv.connect() as sock:
            sock.sendall(get("/sleepy"))
            assert started.wait(3)
        assert wait_for(lambda: events == ["sleepy answered"])
        _still_serves(srv)
    assert not app_errors(caplog, "/sleepy")


def test_graceful_shutdown_waits_for_handler_of_departed_client(serve) -> None:
    srv, thread = serve_with_thread(serve, app, graceful_shutdown_timeout=5)
    sock = srv.connect()
    sock.sendall(get("/sleepy"))
    assert started.wait(3)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST: the connection is gone at once, its handler is not
    assert wait_for(lambda: len(srv.state.connections) == 0)
    stop(srv, thread)
    assert events == ["sleepy answered"]


def test_disconnect_during_streamed_response_stops_the_stream(serve, caplog) -> None:
    srv = serve(app)
    with caplog.at_level(logging.ERROR):
        with srv.connect() as sock:
            sock.sendall(get("/endless"))
            assert started.wait(3)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
        assert wait_for(lambda: events == ["endless finalized"])
        _still_serves(srv)
    assert not app_errors(caplog, "/endless")


def test_client_half_close_still_gets_answers(serve) -> None:
    srv = serve(app)
    with srv.connect(timeout=3) as sock:
        sock.sendall(get("/") + get("/sleepy"))
        sock.shutdown(socket.SHUT_WR)
        client = Client(sock)
        assert client.response().body == b"hi"
        assert client.response().body == b"late"
        assert client.is_closed()


def test_connection_lost_while_reading_body_mock(run) -> None:
    async def go() -> tuple[bytes, list[str]]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01")
        await conn.settle()
        conn.protocol.connection_lost(ConnectionResetError())
        await conn.settle()
        return conn.transport.take(), list(events)

    out, seen = run(go())
    assert out == b""
    assert seen == ["read failed: ClientDisconnected"]


def test_asgi_app_sees_disconnect(run) -> None:
    messages: list[dict[str, Any]] = []

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        messages.append(await receive())
        messages.append(await receive())

    async def go() -> None:
        conn = MockConnection(asgi_app, **NO_DEFAULTS)
        conn.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01")
        await conn.settle()
        conn.protocol.connection_lost(None)
        await pump(conn, lambda d: len(messages) == 2, timeout=2)

    run(go())
    assert messages[0] == {"type": "http.request", "body": b"01", "more_body": True}
    assert messages[1] == {"type": "http.disconnect"}


def test_pipelined_requests_after_disconnect_are_not_run(run) -> None:
    async def go() -> list[str]:
        conn = MockConnection(app, **NO_DEFAULTS)
        conn.feed(get("/sleepy") + get("/sleepy"))
        await conn.settle()
        conn.protocol.connection_lost(None)
        await asyncio.sleep(0.5)
        return list(events)

    # the first handler finishes on its own; the queued one never starts
    assert run(go()) == ["sleepy answered"]


def test_still_serving_after_many_aborted_clients(serve) -> None:
    srv = serve(app)
    for data in (
        b"GET / HT",
        b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        get("/sleepy"),
        get("/endless"),
    ):
        sock = srv.connect()
        sock.sendall(data)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
    _still_serves(srv)
    assert wait_for(lambda: len(srv.state.connections) == 0, 3)
    _still_serves(srv)


def test_a_body_write_racing_a_transport_error_leaves_later_connections_working(serve) -> None:
    """asyncio 3.12/3.13 writelines after a transport error registers a writer on a
    socket about to close; the next connection given that fd then never got read."""
    srv = serve(app)
    with srv.connect() as sock:
        client = Client(sock)
        client.send(get("/"))
        assert client.response().body == b"hi"
        (conn,) = srv.state.connections
        raced = threading.Event()

        def race() -> None:
            # what a read error does: the transport is closed, the protocol not told yet
            conn.transport.abort()
            conn.write_parts((b"5\r\n", b"abcde", b"\r\n"))
            raced.set()

        srv.loop.call_soon_threadsafe(race)
        assert raced.wait(3)
    for _ in range(3):
        _still_serves(srv)
