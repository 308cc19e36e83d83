"""Response features beyond a body of bytes, for the native FileResponse and the
ASGI extensions (pathsend, zerocopysend, trailers, early hints): a file's bytes
(zero-copy ``loop.sendfile`` where the transport can), trailer fields, and 1xx
interim responses. Part of the Exchange (exchange.py), which builds on this class;
the fields used here are the Exchange's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

from .errors import AppError, ClientDisconnected
from .http11 import status_line

if TYPE_CHECKING:
    from .connection import HTTPConnection

_CRLF = b"\r\n"


class ResponseExtensions:
    # Set by Exchange (class-level defaults there, shadowed per request).
    conn: HTTPConnection
    http_version: str
    keep_alive: bool
    response_started: bool
    response_complete: bool
    bytes_sent: int
    _chunked: bool
    _no_body: bool
    _remaining: int | None

    # Exchange's (real methods, not stubs under TYPE_CHECKING: mypyc compiles
    # ResponseExtensions and Exchange as native classes).
    async def write(self, data: bytes, more: bool = True) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _body_goes_out(self, data: bytes, more: bool) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def _body_fits(self, size: int, more: bool) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _abort_body(self, message: str) -> AppError:  # pragma: no cover - overridden
        raise NotImplementedError

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset`` as the rest of the body, and
        end it: ``write_file`` then ``end`` (zero-copy where the transport can)."""
        await self.write_file(file, offset, count)
        await self.write(b"", more=False)

    async def write_file(self, file: BinaryIO, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset`` as part of the body, not ending it.

        Unlike ``sendfile`` this applies the response's framing (a chunk of ``count``
        bytes when chunked) and leaves the body open: ``end``/``write`` completes it.
        Zero-copy ``loop.sendfile`` where the transport supports it, reads and
        writes with backpressure otherwise (uvloop, TLS).
        """
        if not self._body_goes_out(b"", True) or count <= 0:
            return
        self._body_fits(count, True)
        conn = self.conn
        conn.flush_batch()
        if self._chunked:
            conn.write(b"%x\r\n" % count)
        try:
            await conn.loop.sendfile(conn.transport, file, offset, count, fallback=False)
            native = True
        except (NotImplementedError, RuntimeError):
            # Raised before anything is sent when the transport cannot do zero-copy.
            native = False
        except ConnectionError as exc:
            raise ClientDisconnected("client disconnected") from exc
        if not native:
            file.seek(offset)
            left = count
            while left > 0:
                data = file.read(min(left, 262144))
                if not data:
                    raise self._abort_body("file shrank while being sent")
                left -= len(data)
                if conn.closed:
                    raise ClientDisconnected("client disconnected")
                conn.write(data)
                if conn.write_paused:
                    await conn.drain()
        if self._chunked:
            conn.write(_CRLF)
        self.bytes_sent += count
        if conn.write_paused:
            await conn.drain()

    async def end_with_trailers(self, trailer_block: bytes) -> None:
        """End the body with trailer fields (``trailer_block``: validated header lines).

        Trailers exist only in the chunked coding: on a Content-Length, HTTP/1.0 or
        bodiless response they are dropped (RFC 9110 §6.5 lets a recipient discard
        them) and the body simply ends.
        """
        if not self._chunked or self._no_body or self.response_complete:
            await self.write(b"", more=False)
            return
        conn = self.conn
        if conn.closed:
            raise ClientDisconnected("client disconnected")
        self.response_complete = True
        conn.write(b"0\r\n%s\r\n" % trailer_block)
        if conn.write_paused:
            await conn.drain()

    def send_informational(self, status: int, header_block: bytes) -> bool:
        """Send an interim 1xx response (e.g. 103 Early Hints) before the final one.

        Returns False, sending nothing, when that is not allowed: after the final
        response started, to an HTTP/1.0 client (RFC 9110 §15.2), or once the
        client is gone.
        """
        if not 100 <= status <= 199 or status == 101:
            raise AppError(f"invalid informational status {status!r}")
        if self.response_started or self.http_version != "1.1" or self.conn.closed:
            return False
        self.conn.write(b"".join((status_line(status), header_block, _CRLF)))
        return True
