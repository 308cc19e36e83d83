"""WebSocket echo throughput: blazeasgi (native and ASGI) against uvicorn and Granian.

    python -m benchmarks.websocket_echo                   # all servers, 32 B and 4 KiB, 3 rounds
    python -m benchmarks.websocket_echo --duration 5 --connections 50 --size 32
    python -m benchmarks.websocket_echo --frames          # websockets vs wsproto, frames only

Every server runs one worker on 127.0.0.1 with access logs off and serves the same
raw ASGI echo app (``asgi_app`` below; blazeasgi native runs ``native_app``, the same
loop through ``@app.websocket``). The load generator is a separate process (uvloop,
raw sockets): ``--connections`` clients each send one text message, wait for its
echo, and send the next; the figure is echoed messages per second over
``--duration`` seconds after a one-second warm-up, the median of ``--repeat`` rounds
(each round runs every server once, so a drifting load hits them all alike).
No compression (the client offers none), so every server does the same framing
work; the first echo on each connection is checked byte for byte. With two or more
cores the server is pinned to the first and the load generator to the second.

``--frames`` measures the two frame libraries alone (parse a client frame, decode,
serialize the reply; no sockets): the figures behind blazeasgi's choice of
``websockets`` (blazeasgi/websocket/codec.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from blazeasgi import App
from blazeasgi.benchprocess import ServerProcess, free_port, module_available, pinning
from blazeasgi.websocket import WebSocket
from blazeasgi.wrk import BenchError, markdown_table

PY = sys.executable
TARGET = "benchmarks.websocket_echo"


# -- the apps ------------------------------------------------------------------------------
async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raw ASGI echo, the same for every ASGI server."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes")})
    elif scope["type"] == "http":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


native_app = App()


@native_app.get("/")
def _ready(request: Any) -> str:
    return "ok"


@native_app.websocket("/ws")
async def _echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send(message)


# -- the servers ---------------------------------------------------------------------------
def _blazeasgi(app: str) -> Any:
    def argv(port: int) -> list[str]:
        return [
            PY, "-m", "blazeasgi", f"{TARGET}:{app}", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning", "--ws-per-message-deflate", "false",
        ]  # fmt: skip

    return argv


def _uvicorn(ws: str) -> Any:
    def argv(port: int) -> list[str]:
        return [
            PY, "-m", "uvicorn", f"{TARGET}:asgi_app", "--host", "127.0.0.1", "--port", str(port),
            "--http", "httptools", "--loop", "uvloop", "--ws", ws, "--ws-per-message-deflate", "false",
            "--no-access-log", "--log-level", "warning", "--lifespan", "off",
        ]  # fmt: skip

    return argv


def _granian(port: int) -> list[str]:
    return [
        PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--runtime-threads", "1", "--loop", "uvloop", "--http", "1", "--ws",
        "--no-access-log", "--log-level", "warning", f"{TARGET}:asgi_app",
    ]  # fmt: skip


@dataclass(frozen=True)
class Server:
    name: str
    needs: str
    argv: Any


SERVERS = [
    Server("blazeasgi-native", "websockets", _blazeasgi("native_app")),
    Server("blazeasgi-asgi", "websockets", _blazeasgi("asgi_app")),
    Server("uvicorn (websockets-sansio)", "uvicorn", _uvicorn("websockets-sansio")),
    Server("uvicorn (websockets)", "uvicorn", _uvicorn("websockets")),
    Server("granian", "granian", _granian),
]


# -- the load generator (run in its own process: ``--client``) -----------------------------
KEY = base64.b64encode(b"blazeasgi-bench!").decode()


def client_frame(payload: bytes) -> bytes:
    """A masked text frame (the mask is fixed: the same bytes go out every time)."""
    mask = b"\x12\x34\x56\x78"
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_frame(payload: bytes) -> bytes:
    n = len(payload)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
    return head + payload


class EchoClient(asyncio.Protocol):
    def __init__(self, port: int, payload: bytes, opened: asyncio.Future[None]) -> None:
        self.port = port
        self.frame = client_frame(payload)
        self.expected = server_frame(payload)
        self.size = len(self.expected)
        self.opened = opened
        self.head = b""
        self.first = b""
        self.open = False
        self.checked = False
        self.pending = 0
        self.count = 0
        self.running = True
        self.transport: asyncio.Transport | None = None
        self.error: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        request = (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, _, data = self.head.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                self.fail(f"handshake refused: {head[:40]!r}")
                return
            self.open = True
            self.opened.set_result(None)
            assert self.transport is not None
            self.transport.write(self.frame)
            if not data:
                return
        if not self.checked:  # the first echo, byte for byte
            self.first += data
            if len(self.first) < self.size:
                return
            if self.first[: self.size] != self.expected:
                self.fail(f"wrong echo: {self.first[:40]!r}")
                return
            self.checked = True
            data, self.first = self.first, b""
        self.pending += len(data)
        size = self.size
        while self.pending >= size:
            self.pending -= size
            self.count += 1
            if self.running:
                self.transport.write(self.frame)  # type: ignore[union-attr]

    def fail(self, message: str) -> None:
        self.error = message
        if not self.opened.done():
            self.opened.set_exception(BenchError(message))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(BenchError(f"connection lost during handshake: {exc}"))
        elif self.running and self.error is None:
            self.error = "server closed the connection"


async def load(port: int, connections: int, size: int, duration: float, warmup: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    payload = (b"blazeasgi" * (size // 9 + 1))[:size]
    clients = []
    for _ in range(connections):
        opened: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(
            lambda opened=opened: EchoClient(port, payload, opened), "127.0.0.1", port
        )
        clients.append(client)
    await asyncio.wait_for(asyncio.gather(*(c.opened for c in clients)), 30)
    await asyncio.sleep(warmup)
    start_count, start = sum(c.count for c in clients), time.perf_counter()
    await asyncio.sleep(duration)
    end_count, end = sum(c.count for c in clients), time.perf_counter()
    for c in clients:
        c.running = False
    await asyncio.sleep(0.1)
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    errors = sorted({c.error for c in clients if c.error})
    return {"messages_per_s": (end_count - start_count) / (end - start), "errors": errors}


def client_main(args: argparse.Namespace) -> int:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    result = runner(load(args.port, args.connections, args.size, args.duration, args.warmup))
    print(json.dumps(result))
    return 0


# -- the harness ---------------------------------------------------------------------------
def run_one(server: Server, args: argparse.Namespace, size: int) -> float:
    """One measured run: a fresh server process, one load generator run against it."""
    server_prefix, client_prefix = pinning(not args.no_pin)
    port = free_port()
    with ServerProcess(server.name, server.argv(port), port, prefix=server_prefix) as proc:
        proc.wait_ready("/")
        command = [
            *client_prefix, PY, "-m", TARGET, "--client", "--port", str(port),
            "--connections", str(args.connections), "--size", str(size),
            "--duration", str(args.duration), "--warmup", str(args.warmup),
        ]  # fmt: skip
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=args.duration + args.warmup + 60
        )
        if out.returncode != 0:
            raise BenchError(f"{server.name}: load generator failed: {out.stderr.strip()[-500:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["errors"]:
            raise BenchError(f"{server.name}: {', '.join(result['errors'])}")
        return float(result["messages_per_s"])


def bench_servers(args: argparse.Namespace) -> int:
    chosen = [s for s in SERVERS if not args.servers or any(s.name.startswith(n) for n in args.servers)]
    sizes = args.size or [32, 4096]
    notes = []
    runnable = []
    for server in chosen:
        if module_available(server.needs):
            runnable.append(server)
        else:
            notes.append(f"{server.name}: skipped, {server.needs} is not installed")
    samples: dict[tuple[str, int], list[float]] = {}
    failed: set[tuple[str, int]] = set()
    # Round-robin over servers in each round, so drifting load on a shared machine
    # hits every server alike; the median of the rounds is kept.
    for round_ in range(args.repeat):
        for size in sizes:
            for server in runnable:
                key = (server.name, size)
                if key in failed:
                    continue
                try:
                    rate = run_one(server, args, size)
                except BenchError as exc:
                    notes.append(str(exc))
                    failed.add(key)
                    continue
                samples.setdefault(key, []).append(rate)
                print(
                    f"round {round_ + 1}: {server.name:28s} {size:6d} B  {rate:10.0f} msg/s",
                    file=sys.stderr,
                    flush=True,
                )
    table = {
        server.name: {
            size: statistics.median(samples[(server.name, size)]) if (server.name, size) in samples else None
            for size in sizes
        }
        for server in runnable
    }
    base = {size: table.get("uvicorn (websockets-sansio)", {}).get(size) for size in sizes}
    header = ["server"] + [f"{size} B msg/s" for size in sizes] + [f"{size} B vs uvicorn" for size in sizes]
    rows = []
    for name, rates in table.items():
        row = [name] + [f"{rates[s]:,.0f}" if rates[s] else "-" for s in sizes]
        for s in sizes:
            b, r = base[s], rates[s]
            row.append(f"{r / b:.2f}x" if b and r else "-")
        rows.append(row)
    print(
        f"\nWebSocket echo, {args.connections} connections, one message in flight each, "
        f"{args.duration:g} s per run, median of {args.repeat} round(s), {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print(markdown_table(header, rows))
    for note in notes:
        print(f"\n- {note}")
    return 0


# -- frame libraries alone -----------------------------------------------------------------
def bench_frames(args: argparse.Namespace) -> int:
    from websockets.frames import Opcode
    from websockets.protocol import Protocol, Side
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import TextMessage

    def frames(size: int, n: int) -> list[bytes]:
        client = Protocol(Side.CLIENT)
        payload = ("x" * size).encode()
        for _ in range(n):
            client.send_text(payload)
        return client.data_to_send()

    def with_websockets(data: list[bytes]) -> float:
        server = Protocol(Side.SERVER, max_size=2**24)
        start, done = time.perf_counter(), 0
        for chunk in data:
            server.receive_data(chunk)
            for frame in server.events_received():
                if frame.opcode is Opcode.TEXT:
                    server.send_text(frame.data.decode().encode())
                    done += 1
            server.data_to_send()
        return done / (time.perf_counter() - start)

    def with_wsproto(data: list[bytes]) -> float:
        server = Connection(ConnectionType.SERVER)
        start, done = time.perf_counter(), 0
        for chunk in data:
            server.receive_data(chunk)
            for event in server.events():
                if isinstance(event, TextMessage):
                    server.send(TextMessage(data=event.data))
                    done += 1
        return done / (time.perf_counter() - start)

    rows = []
    for size in args.size or [16, 1024, 65536]:
        data = frames(size, 20000 if size < 65536 else 2000)
        a = max(with_websockets(data) for _ in range(3))
        b = max(with_wsproto(data) for _ in range(3))
        rows.append([f"{size} B", f"{a:,.0f}", f"{b:,.0f}", f"{a / b:.1f}x"])
    print("Frame libraries alone: parse + decode + reply, messages/s (best of 3)\n")
    print(markdown_table(["message", "websockets", "wsproto", "ratio"], rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.websocket_echo", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--servers", nargs="*", help="server names (blazeasgi-native, blazeasgi-asgi, uvicorn, granian)"
    )
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--size", type=int, action="append", help="message size in bytes (repeatable)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per run (default: 5)")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3, help="rounds over all servers; the median is kept")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and load generator to cores")
    p.add_argument("--frames", action="store_true", help="benchmark the frame libraries alone")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client:
        args.size = args.size[0] if args.size else 32
        return client_main(args)
    if args.frames:
        return bench_frames(args)
    try:
        return bench_servers(args)
    except BenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
