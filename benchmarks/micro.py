"""Per-request cost of the engine without sockets: feed a request, count µs.

    python -m benchmarks.micro [native|asgi|starlette|fastapi] [--profile] [--app-alone] [--close]
        [--each] [--http2] [--browser] [--n N]
    python -m benchmarks.micro --parse httptools|httptools-bare|zttp|zttp-event [--browser] [--n N]

A mock transport swallows the writes, so this isolates the server's own Python
work (parse, dispatch, serialise) from the kernel; compare runs, not absolutes.
``--app-alone`` (ASGI kinds) runs the app with no server at all: a minimal scope and
no-op receive/send, stepped once per request. The difference between the two is the
server's own cost for that app. ``--close`` opens a new connection for every
request (``Connection: close``), as behind a default nginx upstream: the cost
then includes setting up and tearing down the connection and any task or loop
pass that takes. ``--each`` feeds one request at a time and runs the loop until its
response is written: the cost then includes the loop passes a handler path takes
(compare ``BLAZEASGI_TASKS=task`` with the default). ``--http2`` sends the
requests as HTTP/2 streams on prior-knowledge h2c connections, ten a read
(h2load's ``-m 10``), 1,000 a connection. ``--browser`` sends a browser's page
request (16 header fields, 914 bytes) instead of wrk's (3 fields). ``--parse``
times the HTTP/1.1 parse of one request alone, no app (see parser_for). ``--n``
sets the number of requests timed; under callgrind, two runs give the instructions per request:
(count at n=60000 - count at n=20000) / 40000.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

from blazeasgi.cli import to_served_app
from blazeasgi.config import Config
from blazeasgi.engine.connection import HTTPConnection
from blazeasgi.engine.server import ServerState
from blazeasgi.engine.serverstate import ConnectionFactory
from blazeasgi.settings import InterfaceSettings

from .apps.common import BROWSER_HEADERS

#: wrk's request: three header fields.
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
#: What a browser sends for a page (``--browser``): Chrome's 16 header fields (a reload),
#: 914 bytes (apps.common.BROWSER_HEADERS, also wrk's in the ``hello-browser`` scenario).
BROWSER_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: localhost:8000\r\n"
    + b"".join(f"{name}: {value}\r\n".encode() for name, value in BROWSER_HEADERS)
    + b"\r\n"
)


class NullTransport:
    def __init__(self) -> None:
        self.n = 0

    def write(self, data: bytes) -> None:
        self.n += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


def app_for(kind: str) -> Any:
    if kind == "native":
        from benchmarks.apps.hello_native import app
    elif kind == "asgi":
        from benchmarks.apps.hello_asgi import app
    elif kind == "starlette":
        from benchmarks.apps.starlette_app import app
    else:
        from benchmarks.apps.fastapi_app import app
    return app


def load(kind: str) -> Any:
    return to_served_app(app_for(kind), InterfaceSettings(lifespan="off"))


async def run(kind: str, n: int, profile: bool, request: bytes = REQUEST) -> None:
    served = load(kind)
    await served.startup()
    state = ServerState(Config(access_log=False), served.dispatch, asyncio.get_running_loop())
    conn = HTTPConnection(state)
    transport = NullTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(request)
    for _ in range(3):  # let the connection's host task start (see engine/tasks.py)
        await asyncio.sleep(0)
    for _ in range(1000):
        conn.data_received(request)
    await asyncio.sleep(0)
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    for _ in range(n):
        conn.data_received(request)
    dt = time.perf_counter() - t0
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    await asyncio.sleep(0.1)
    print(f"{kind}: {dt / n * 1e6:.2f} us/request ({transport.n} writes)")


def h2_requests() -> tuple[bytes, Callable[[int], bytes]]:
    """The client's preface with its first request (stream 1), and a maker of
    the HEADERS frame of any later stream: once HPACK's table holds the fields,
    every request's block is the same bytes, so frames are made by stream id."""
    import h2.config
    import h2.connection

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    fields = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"localhost")]
    fields += [(b"user-agent", b"h2load"), (b"accept", b"*/*")]
    client.send_headers(1, fields, end_stream=True)
    first = client.data_to_send()
    client.send_headers(3, fields, end_stream=True)
    frame = client.data_to_send()
    head, block = frame[:5], frame[9:]  # length, type, flags | stream id | block

    def headers(stream_id: int) -> bytes:
        return head + stream_id.to_bytes(4, "big") + block

    return first, headers


async def run_http2(kind: str, n: int) -> None:
    """Prior-knowledge h2c, ten requests a read (h2load's ``-m 10``) and a new
    connection every 1,000 requests (``-n 100000 -c 100``)."""
    served = load(kind)
    await served.startup()
    state = ServerState(Config(access_log=False), served.dispatch, asyncio.get_running_loop())
    first, headers = h2_requests()
    transport = NullTransport()
    reads = [b"".join(headers(3 + 20 * r + 2 * i) for i in range(10)) for r in range(100)]

    def connection() -> None:
        conn = HTTPConnection(state)
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(first)
        h2conn = transport.protocol
        for data in reads:  # 1,000 requests (and the first)
            h2conn.data_received(data)
        h2conn.connection_lost(None)

    for _ in range(3):
        connection()
    await asyncio.sleep(0)
    writes = transport.n
    t0 = time.perf_counter()
    for _ in range(max(1, n // 1000)):
        connection()
    dt = time.perf_counter() - t0
    await asyncio.sleep(0.1)
    print(f"{kind} --http2: {dt / n * 1e6:.2f} us/request ({transport.n - writes} writes)")


async def run_close(kind: str, n: int, request: bytes = REQUEST) -> None:
    """A new connection per request: made, fed one request, lost."""
    served = load(kind)
    await served.startup()
    state = ServerState(Config(access_log=False), served.dispatch, asyncio.get_running_loop())
    transport = NullTransport()
    request = request.replace(b"Connection: keep-alive\r\n", b"").replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
    )

    # As a server's listener bound to 127.0.0.1:8000 makes them (NullTransport's sockname).
    factory = ConnectionFactory(state, ("127.0.0.1", 8000))

    async def batch(count: int) -> None:
        for _ in range(count):
            conn = factory()
            conn.connection_made(transport)  # type: ignore[arg-type]
            conn.data_received(request)
            conn.connection_lost(None)
        for _ in range(3):  # whatever the connections left to the loop runs now
            await asyncio.sleep(0)

    await batch(1000)
    writes = transport.n
    t0 = time.perf_counter()
    for _ in range(n // 100):
        await batch(100)
    dt = time.perf_counter() - t0
    print(f"{kind} --close: {dt / n * 1e6:.2f} us/request ({transport.n - writes} writes)")


async def run_each(kind: str, n: int, request: bytes = REQUEST) -> None:
    """One request at a time on a kept-alive connection, the loop run until it is answered."""
    served = load(kind)
    await served.startup()
    state = ServerState(Config(access_log=False), served.dispatch, asyncio.get_running_loop())
    conn = HTTPConnection(state)
    transport = NullTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]

    async def answer(count: int) -> None:
        for _ in range(count):
            answered = transport.n + 1
            conn.data_received(request)
            while transport.n < answered:
                await asyncio.sleep(0)

    await answer(500)
    t0 = time.perf_counter()
    await answer(n)
    dt = time.perf_counter() - t0
    print(f"{kind} --each: {dt / n * 1e6:.2f} us/request")


class _BareCallbacks:
    """httptools' callbacks doing the least a server must: the target and the
    lower-cased header list (no checks, no Exchange)."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.heads = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.heads += 1
        self.url = b""
        self.headers = []


def parser_for(parser: str) -> Callable[[bytes], object]:
    """One request's parse, fed whole, as a callable (``--parse PARSER``):

    * ``httptools``: the engine's own parser and callbacks (connection.py), up to
      the Exchange queued for dispatch: what a request costs before the app runs;
    * ``httptools-bare``: httptools with callbacks that only collect the target
      and the lower-cased header list (_BareCallbacks);
    * ``zttp``: zttp's HTTP/1.1 parser (``H1Connection.receive_event``), its
      Request event with the headers as a lower-cased list, the connection reset
      for the next request (``start_next_cycle``); zttp checks the request line
      and fields itself (no trailing OWS, one Host, framing fields);
    * ``zttp-event``: the same without materialising the header list (the
      HeaderBlock stays lazy).
    """
    if parser == "httptools":
        state = ServerState(Config(access_log=False), lambda ex: None, asyncio.new_event_loop())
        conn = HTTPConnection(state)
        conn.connection_made(NullTransport())  # type: ignore[arg-type]
        feed = conn._parser.feed_data
        pipeline = conn._pipeline

        def engine(data: bytes) -> object:
            feed(data)
            return pipeline.popleft()

        return engine
    if parser == "httptools-bare":
        import httptools

        return httptools.HttpRequestParser(_BareCallbacks()).feed_data
    import zttp

    h1 = zttp.Connection(zttp.SERVER, zttp.HTTP1)
    receive, reset = h1.receive_event, h1.start_next_cycle
    if parser == "zttp-event":

        def event(data: bytes) -> object:
            request = receive(data)
            reset()
            return request

        return event

    def listed(data: bytes) -> object:
        request = receive(data)
        headers = request.headers.to_list(lowercase_names=True)  # type: ignore[union-attr]
        reset()
        return headers

    return listed


def run_parse(parser: str, n: int, request: bytes = REQUEST) -> None:
    parse = parser_for(parser)
    for _ in range(1000):
        parse(request)
    t0 = time.perf_counter()
    for _ in range(n):
        parse(request)
    dt = time.perf_counter() - t0
    print(f"parse {parser}: {dt / n * 1e6:.2f} us/request ({len(request)} bytes)")


async def run_app_alone(kind: str, n: int) -> None:
    if kind == "native":
        raise SystemExit("--app-alone needs an ASGI kind: asgi, starlette or fastapi")
    app = app_for(kind)
    headers = [(b"host", b"localhost:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
    sent = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        sent += 1

    def one() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000), "scheme": "http",
            "method": "GET", "root_path": "", "path": "/", "raw_path": b"/", "query_string": b"",
            "headers": headers, "state": {},
        }  # fmt: skip
        coro = app(scope, receive, send)
        try:
            coro.send(None)
        except StopIteration:
            return
        raise RuntimeError(f"{kind} suspended: --app-alone needs an app that answers at once")

    for _ in range(1000):
        one()
    t0 = time.perf_counter()
    for _ in range(n):
        one()
    dt = time.perf_counter() - t0
    print(f"{kind} app alone: {dt / n * 1e6:.2f} us/request ({sent} messages sent)")


if __name__ == "__main__":
    import uvloop

    kind = sys.argv[1] if len(sys.argv) > 1 else "native"
    count = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 0
    request = BROWSER_REQUEST if "--browser" in sys.argv else REQUEST
    if "--parse" in sys.argv:
        run_parse(sys.argv[sys.argv.index("--parse") + 1], count or 200_000, request)
    elif "--app-alone" in sys.argv:
        uvloop.run(run_app_alone(kind, count or 100_000))
    elif "--close" in sys.argv:
        uvloop.run(run_close(kind, count or 100_000, request))
    elif "--each" in sys.argv:
        uvloop.run(run_each(kind, count or 100_000, request))
    elif "--http2" in sys.argv:
        uvloop.run(run_http2(kind, count or 100_000))
    else:
        uvloop.run(run(kind, count or 200_000, "--profile" in sys.argv, request))
