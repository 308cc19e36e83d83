"""Write backpressure with a client that stops reading, for every kind of response.

Each case streams 48 MiB to a raw socket that reads nothing: the server must stop
producing once the socket and its own high-water mark are full, holding a bounded
amount in memory, and then deliver every byte once the client reads. Run under
uvloop and plain asyncio on every Python: asyncio's ``writelines`` on 3.12.0-3.12.8
and 3.13.0-3.13.1 does not pause the protocol (CPython gh-127655), and before the
engine checked the buffer itself a chunked stream grew the server by its whole body.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path
from typing import Any

import pytest

from blazeasgi import App, EventSourceResponse, FileResponse, Request, StreamingResponse, WebSocket

CHUNK = 1 << 16
COUNT = 768  # 48 MiB
TOTAL = CHUNK * COUNT
#: What the server may hold for one stalled connection: the high-water mark
#: (64 KiB), one chunk above it and framing. Before the fix: tens of MiB.
MAX_BUFFERED = 1 << 20

produced = [0]
#: The served file (made per test in a temporary directory).
FILE: list[Path] = []
PAYLOAD = b"x" * CHUNK


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(COUNT):
            await send({"type": "websocket.send", "bytes": PAYLOAD})
            produced[0] += CHUNK
        await send({"type": "websocket.close"})
        return
    path = scope["path"]
    if path == "/file":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % TOTAL)]}
        )
        await send({"type": "http.response.pathsend", "path": str(FILE[0])})
        return
    headers = [(b"content-length", b"%d" % TOTAL)] if path == "/length" else []
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for i in range(COUNT):
        await send({"type": "http.response.body", "body": PAYLOAD, "more_body": i < COUNT - 1})
        produced[0] += CHUNK


native = App()


@native.get("/chunked")
def native_chunked(request: Request) -> StreamingResponse:
    async def body() -> Any:
        for _ in range(COUNT):
            yield PAYLOAD
            produced[0] += CHUNK

    return StreamingResponse(body())


@native.get("/sse")
def native_sse(request: Request) -> EventSourceResponse:
    async def events() -> Any:
        line = "y" * (CHUNK - 16)
        for _ in range(COUNT):
            yield line
            produced[0] += CHUNK

    return EventSourceResponse(events())


@native.get("/file")
def native_file(request: Request) -> FileResponse:
    return FileResponse(FILE[0])


@native.websocket("/ws")
async def native_ws(ws: WebSocket) -> None:
    await ws.accept()
    for _ in range(COUNT):
        await ws.send_bytes(PAYLOAD)
        produced[0] += CHUNK
    await ws.close()


WS_REQUEST = (
    "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


def http_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()


CASES = {
    "asgi-content-length": ("asgi", http_request("/length"), True),
    "asgi-chunked": ("asgi", http_request("/chunked"), True),
    "asgi-pathsend": ("asgi", http_request("/file"), False),
    "asgi-websocket": ("asgi", WS_REQUEST, True),
    "native-chunked": ("native", http_request("/chunked"), True),
    "native-sse": ("native", http_request("/sse"), True),
    "native-file": ("native", http_request("/file"), False),
    "native-websocket": ("native", WS_REQUEST, True),
}


def server_buffered(srv: Any) -> int:
    """Bytes the server holds in its transports' write buffers right now."""

    async def measure() -> int:
        state = srv.state
        conns = list(state.connections) + list(state.websockets)
        return sum(c.transport.get_write_buffer_size() for c in conns if c.transport is not None)

    return asyncio.run_coroutine_threadsafe(measure(), srv.loop).result(5)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        for _ in range(COUNT):
            f.write(PAYLOAD)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_stalled_reader_holds_bounded_memory(serve: Any, big_file: Path, case: str) -> None:
    interface, request, counts = CASES[case]
    FILE[:] = [big_file]
    srv = serve(asgi_app if interface == "asgi" else native, lifespan="off")
    produced[0] = 0
    sock = srv.slow_reader()
    try:
        sock.sendall(request)
        # Let the server run until it stops advancing while nothing is read.
        deadline = time.monotonic() + 5
        last = -1
        time.sleep(0.3)
        while produced[0] != last and time.monotonic() < deadline:
            last = produced[0]
            time.sleep(0.3)
        buffered = server_buffered(srv)
        assert buffered <= MAX_BUFFERED, f"server buffered {buffered} bytes for a stalled reader"
        if counts:
            assert 0 < produced[0] < TOTAL // 4, produced[0]
        received = 0
        while received < TOTAL:
            chunk = sock.recv(1 << 20)
            assert chunk, f"connection closed after {received} bytes"
            received += len(chunk)
        # The last chunk is counted just after it is written (framing makes the
        # wire longer than TOTAL): give the producer a moment to finish.
        deadline = time.monotonic() + 5
        while counts and produced[0] < TOTAL and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sock.close()
    if counts:
        assert produced[0] == TOTAL
