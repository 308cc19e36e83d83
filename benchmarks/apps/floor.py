"""The floor: a bare uvloop Protocol that answers every request with fixed bytes.

    python -m benchmarks.apps.floor --port 8000

It does none of a server's work (no parsing beyond counting head ends, no routing, no
framing rules, no limits); it writes the same bytes as the native hello route
(``HELLO`` + five security headers + a Date cached per second), one write per read.
A request that asks for ``Connection: close`` (or HTTP/1.0's default) gets its
answer with ``connection: close`` and the connection closed, as the ``hello-close``
and ``hello-http10`` scenarios need. It measures what the event loop and the kernel
cost on this machine, so a table can say how far each real server sits above that
floor. Only the hello scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from email.utils import formatdate

from .common import HELLO, SECURITY_HEADERS

_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n" + b"".join(
    f"{name}: {value}\r\n".encode() for name, value in SECURITY_HEADERS.items()
)
_TAIL = f"content-length: {len(HELLO)}\r\n\r\n".encode() + HELLO


class _Clock:
    second = 0
    response = b""
    closing = b""

    @classmethod
    def reply(cls, close: bool = False) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            date = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
            cls.response = _HEAD + date + _TAIL
            cls.closing = _HEAD + date + b"connection: close\r\n" + _TAIL
        return cls.closing if close else cls.response


class FloorProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.partial = b""

    def data_received(self, data: bytes) -> None:
        data = self.partial + data
        count = data.count(b"\r\n\r\n")
        self.partial = data[data.rfind(b"\r\n\r\n") + 4 :] if count else data
        if count:
            if b"lose\r\n" in data or (b"HTTP/1.0" in data and b"eep-alive" not in data):
                self.transport.write(_Clock.reply(close=True))
                self.transport.close()
            else:
                self.transport.write(_Clock.reply() * count)


async def serve(host: str, port: int, backlog: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FloorProtocol, host, port, backlog=backlog)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port, args.backlog))


if __name__ == "__main__":
    main()
