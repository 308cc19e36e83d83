"""Fast CI variants of the attacks in benchmarks/attacks/ (which measure the figures).

* slowloris: connections trickling a head are cut by the head timeout (408 + close)
  while a normal client keeps being served on its keep-alive connection;
* slow reader: a client that stops reading an endless streamed response (native
  StreamingResponse and ASGI) holds a bounded amount of server memory, and the
  stream ends when it leaves;
* limit-concurrency: a burst past ``max_connections`` gets 503 + ``connection:
  close``, never reaches the app, and admitted clients are unaffected;
* graceful shutdown under load: every in-flight request completes and says
  ``connection: close``, idle keep-alive connections are closed, and a real SIGTERM
  to ``python -m blazeasgi`` exits 0 after answering them all.

Loopback only, small numbers (tens of connections), no speed asserts: the bounds
checked are timeouts and byte counts.
"""

from __future__ import annotations

import asyncio
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from blazeasgi import App, Request, Response, StreamingResponse

from ..helpers.http import Client, get, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHUNK = b"x" * 65536


#: Closed loops collected after each test, in this thread (conftest.collect_garbage).
pytestmark = pytest.mark.usefixtures("collect_garbage")


app = App()
calls: list[str] = []
produced = {"native": 0, "asgi": 0}
finalized: list[str] = []
gate = threading.Event()
started: list[str] = []


@app.get("/")
def index(request: Request) -> Response:
    calls.append("/")
    return Response(b"hi", media_type="text/plain")


@app.get("/endless")
def endless(request: Request) -> StreamingResponse:
    async def chunks() -> Any:
        try:
            while True:
                yield CHUNK
                produced["native"] += 1
        finally:
            finalized.append("native")

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/gated")
async def gated(request: Request) -> Response:
    started.append(request.path)
    while not gate.is_set():
        await asyncio.sleep(0.01)
    return Response(b"done", media_type="text/plain")


async def asgi_endless(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] != "/endless":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    try:
        while True:
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            produced["asgi"] += 1
    finally:
        finalized.append("asgi")


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    calls.clear()
    finalized.clear()
    started.clear()
    gate.clear()
    produced.update(native=0, asgi=0)
    yield
    gate.set()  # never leave a handler waiting


def on_server_loop(srv: Any, fn: Any) -> Any:
    """Run ``fn()`` on the server's event loop thread and return its result."""

    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), srv.loop).result(5)


# -- slowloris --------------------------------------------------------------------------------


def test_slowloris_is_cut_while_a_normal_client_is_served(serve) -> None:
    srv = serve(app, head_timeout=1, keep_alive_timeout=30)
    slow = [srv.connect(timeout=5) for _ in range(40)]
    legit = Client(srv.connect(timeout=5))
    trickle = b"X-Slow: " + b"a" * 1000
    received: dict[socket.socket, bytes] = {s: b"" for s in slow}
    closed_after: dict[socket.socket, float] = {}
    try:
        start = time.monotonic()
        for s in slow:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
        served = 0
        i = 0
        while len(closed_after) < len(slow) and time.monotonic() - start < 6:
            for s in slow:  # one more byte each, every ~50 ms: the head never ends
                if s not in closed_after:
                    try:
                        s.send(trickle[i : i + 1])
                    except OSError:
                        pass
            i += 1
            readable, _, _ = select.select([s for s in slow if s not in closed_after], [], [], 0.05)
            for s in readable:
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                received[s] += data
                if not data:
                    closed_after[s] = time.monotonic() - start
            legit.send(get("/"))
            resp = legit.response()
            assert (resp.status, resp.body) == (200, b"hi") and not resp.closes
            served += 1
    finally:
        for s in slow:
            s.close()
    assert len(closed_after) == len(slow), f"{len(slow) - len(closed_after)} slow connections still open"
    for data in received.values():
        assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data[:100]
        assert b"\r\nconnection: close\r\n" in data
    # head_timeout 1 s, swept once a second: every one is cut within ~2 s of its start
    assert max(closed_after.values()) < 4.0, sorted(closed_after.values())
    assert served >= 10  # the normal client was answered all along, on one connection
    legit.send(get("/"))
    assert legit.response().status == 200
    legit.sock.close()


# -- slow reader --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["native", "asgi"])
def test_slow_reader_costs_bounded_memory(serve, kind: str) -> None:
    srv = serve(app if kind == "native" else asgi_endless)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", srv.port))
    try:
        sock.sendall(get("/endless"))
        assert sock.recv(100).startswith(b"HTTP/1.1 200 OK\r\n")
        # the client reads nothing more; the producer must stall
        assert wait_for(lambda: produced[kind] > 0)
        last = -1
        deadline = time.monotonic() + 10
        while produced[kind] != last and time.monotonic() < deadline:
            last = produced[kind]
            time.sleep(0.3)
        assert produced[kind] == last, "the producer never stalled"
        buffered = on_server_loop(
            srv, lambda: [c.transport.get_write_buffer_size() for c in srv.state.connections]
        )
        # in user space: at most the write high-water mark plus one chunk in flight
        assert max(buffered) <= srv.server.config.write_high_water + 2 * len(CHUNK), buffered
        # in all (kernel socket buffers included): a few MiB, not the endless stream
        assert produced[kind] * len(CHUNK) < 32 << 20, produced[kind]
        with srv.connect() as other:  # the server is not stuck behind the slow reader
            client = Client(other)
            client.send(get("/"))
            assert client.response().body == b"hi"
    finally:
        sock.close()
    assert wait_for(lambda: finalized == [kind]), "the stream did not end with its client"


# -- limit-concurrency ---------------------------------------------------------------------------


def test_limit_concurrency_burst_gets_503_and_close(serve) -> None:
    srv = serve(app, max_connections=8)
    admitted = [Client(srv.connect(timeout=5)) for _ in range(8)]
    try:
        for client in admitted:
            client.send(get("/"))
            assert client.response().body == b"hi"

        def rejected(_: int) -> tuple[int, bool, bool]:
            with srv.connect(timeout=5) as sock:
                sock.sendall(get("/"))
                client = Client(sock)
                resp = client.response()
                return resp.status, resp.closes, client.is_closed()

        with ThreadPoolExecutor(24) as pool:
            burst = pool.submit(lambda: list(pool.map(rejected, range(24))))
            for client in admitted:  # admitted clients keep being served meanwhile
                client.send(get("/"))
                assert client.response().body == b"hi"
            results = burst.result(30)
        assert results == [(503, True, True)] * 24
        assert calls == ["/"] * 16  # the burst never reached the app
    finally:
        for client in admitted[:4]:
            client.sock.close()

    def admitted_again() -> bool:
        with srv.connect(timeout=5) as sock:
            client = Client(sock)
            client.send(get("/"))
            try:
                return client.response().status == 200
            except AssertionError:
                return False

    try:
        assert wait_for(admitted_again)
    finally:
        for client in admitted[4:]:
            client.sock.close()


# -- graceful shutdown under load ---------------------------------------------------------------


def test_graceful_shutdown_under_load(serve) -> None:
    before = set(threading.enumerate())
    srv = serve(app, graceful_shutdown_timeout=10)
    (thread,) = set(threading.enumerate()) - before
    fresh = [Client(srv.connect(timeout=10)) for _ in range(20)]
    reused = [Client(srv.connect(timeout=10)) for _ in range(10)]
    idle = [Client(srv.connect(timeout=10)) for _ in range(10)]
    try:
        for client in reused + idle:  # keep-alive connections with one request done
            client.send(get("/"))
            assert client.response().body == b"hi"
        for client in fresh + reused:
            client.send(get("/gated"))
        assert wait_for(lambda: len(started) == 30), len(started)

        srv.loop.call_soon_threadsafe(srv.server.request_stop)
        for client in idle:  # idle keep-alive connections: closed, nothing sent
            assert client.is_closed(timeout=5)
        gate.set()
        for client in fresh + reused:  # every in-flight request completes
            resp = client.response()
            assert (resp.status, resp.body) == (200, b"done")
            assert resp.closes
            assert client.is_closed(timeout=5)
        thread.join(10)
        assert not thread.is_alive()
    finally:
        gate.set()
        for client in fresh + reused + idle:
            client.sock.close()


def test_sigterm_under_load_answers_every_in_flight_request_and_exits_0() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blazeasgi",
            "benchmarks.attacks.apps:app",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        idle = Client(sock)
        idle.send(get("/"))
        assert idle.response().status == 200
        busy = [Client(socket.create_connection(("127.0.0.1", port), timeout=10)) for _ in range(20)]
        for client in busy:
            client.send(get("/slow", version=b"1.1").replace(b"/slow", b"/slow?ms=800"))
        time.sleep(0.3)  # all 20 are in the app's 0.8 s sleep
        proc.send_signal(signal.SIGTERM)
        assert idle.is_closed(timeout=5)
        for client in busy:
            resp = client.response()
            assert (resp.status, resp.body, resp.closes) == (200, b"slow", True)
        assert proc.wait(15) == 0
        for client in [idle, *busy]:
            client.sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
