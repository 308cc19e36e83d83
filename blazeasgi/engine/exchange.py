"""One request/response on a connection, as the engine hands it to an interface.

An ``Exchange`` (with its ``ConnectionInfo``, conninfo.py) is the whole contract between the
engine and the interfaces (native API, ASGI adapter, WebSockets): the parsed
request head, the de-chunked body as a stream with read backpressure, and a
response writer that owns the framing (Content-Length or chunked, HEAD, no-body
statuses, length checks, keep-alive). Neither interface ever sees raw HTTP/1.1
bytes.

What an interface may use:
  * request head: ``method``, ``target``, ``path``, ``query_string``, ``headers``,
    ``http_version``, ``keep_alive``, ``expect_continue``, ``noted_fields``, ``upgrade``;
  * the connection: ``info`` (a ``ConnectionInfo``: client, server, scheme, tls,
    config, loop, state, closed; the same object for every request of a connection),
    ``disconnected``, ``write_paused``;
  * request body: ``receive_body``, ``read_body``, ``wait_disconnect``,
    ``body_complete``, ``body_received``;
  * response: ``respond``, ``start``, ``write``, ``end``, ``sendfile``, ``write_file``,
    ``end_with_trailers``, ``send_informational``, and the state ``status``, ``held``,
    ``response_started``, ``response_complete``, ``bytes_sent``;
  * the protocol switch: ``switch_protocols`` (101, then the socket is the caller's).

``conn`` (the HTTPConnection) and every underscore name are the engine's own.

Inside the engine, the HTTPConnection and its exchanges talk through named methods,
and neither touches the other's underscore names; HTTP/2 (http2.py: HTTP2Connection
and its streams' H2Exchange) uses the same names for the same steps:
  * the connection feeds the request body: ``feed_body``, ``end_body`` (HTTP/1.1:
    only if ``body_waiter`` is set), ``client_lost``, ``skip_unread_body``; reads
    ``buffered`` (unread bytes, for read backpressure), ``continue_sent``,
    ``unread_body_closes`` and ``body_bytes_sent``;
  * the exchange writes through ``conn``: ``write``, ``write_parts``,
    ``flush_batch``, ``drain``, ``abort_after_write``, ``switch_protocols``; reports
    ``body_consumed``; asks ``declared_length``; reads ``closed``, ``peer_eof``,
    ``write_paused``, ``batch``, ``state``, ``loop``, ``transport``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from .errors import AppError, ClientDisconnected, ProtocolError
from .http11 import (
    CONTINUE_100,
    LAST_CHUNK,
    NO_BODY_STATUSES,
    STATUS_LINES,
    ResponseHead,
    status_line,
)
from .responseext import ResponseExtensions

if TYPE_CHECKING:
    from .connection import HTTPConnection

_CRLF: Final = b"\r\n"
_CLOSE: Final = b"connection: close\r\n"
_KEEP_ALIVE: Final = b"connection: keep-alive\r\n"
_CHUNKED: Final = b"transfer-encoding: chunked\r\n"
#: An unread request body is skipped to keep the connection alive only when at
#: most this much of it is still to come; past it the connection is closed.
_MAX_DISCARD: Final = 1 << 20
#: Status lines of the statuses whose responses carry a body (one lookup per response).
_BODY_STATUS_LINES: Final = {
    code: line for code, line in STATUS_LINES.items() if code not in NO_BODY_STATUSES
}
#: Pre-encoded Content-Length lines for small bodies (saves ~0.15 us a response).
_CONTENT_LENGTHS: Final = [b"content-length: %d\r\n" % n for n in range(4096)]


class Exchange(ResponseExtensions):
    # Per-request state that starts the same for every request lives at class level
    # and is shadowed on first write: the constructor stores 8 fields, not 28.
    # Measured: 0.35 us less per request than a fully initialised __slots__ class.
    # request body
    _chunks: list[bytes] | None = None
    #: Body bytes received and not yet read by the handler (for read backpressure).
    buffered = 0
    body_received = 0
    body_complete = False
    #: What a handler waiting in receive_body awaits (the connection's on_message_complete
    #: looks before calling end_body: most requests are complete before they start).
    body_waiter: asyncio.Future[None] | None = None
    expect_continue = False
    #: 100 Continue went to the client (the engine's HTTP/2 request timer reads it).
    continue_sent = False
    discard_body = False
    body_error: ProtocolError | None = None
    # response
    status = 0
    response_started = False
    response_complete = False
    _chunked = False
    _remaining: int | None = None
    _no_body = False
    bytes_sent = 0
    #: The protocol a request asked to switch to (its Upgrade header, lower-cased),
    #: set only when the parser stopped at the upgrade; see HTTPConnection.switch_protocols.
    upgrade: bytes | None = None
    #: The request has a TE, Forwarded or X-Forwarded-* field (see connection.py).
    noted_fields = False
    #: A response head the interface declared (with ``status``) but has not
    #: written yet; the engine sends it if the handler ends without a body.
    held: ResponseHead | None = None
    _disconnect_waiter: asyncio.Future[None] | None = None

    def __init__(
        self,
        conn: HTTPConnection,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        http_version: str,
        keep_alive: bool,
    ) -> None:
        self.conn = conn
        self.info = conn.info
        self.method = method
        self.target = target
        if 63 in target:  # "?" (an int: bytes.__contains__ then takes memchr, no call)
            self.path, _, self.query_string = target.partition(b"?")
        else:  # no query: spares the partition call and its tuple (compiled, ~0.4k instructions)
            self.path = target
            self.query_string = b""
        self.headers = headers
        self.http_version = http_version
        self.keep_alive = keep_alive
        if method == "HEAD":
            self._no_body = True

    # -- connection facts ---------------------------------------------------------
    @property
    def client(self) -> tuple[str, int] | None:
        return self.info.client

    @property
    def server(self) -> tuple[str, int] | None:
        return self.info.server

    @property
    def scheme(self) -> str:
        return self.info.scheme

    @property
    def disconnected(self) -> bool:
        """The connection is closed (or was handed to another protocol)."""
        return self.conn.closed

    @property
    def write_paused(self) -> bool:
        """The transport's write buffer is over its high-water mark."""
        return self.conn.write_paused

    def switch_protocols(self, header_block: bytes) -> tuple[asyncio.Transport, bytes]:
        """Answer this upgrade request with 101 and hand its socket over.

        ``header_block``: the 101's header lines (validated; Upgrade and Connection
        included). Returns the transport and the bytes the client sent after the
        request head; the caller sets its own protocol on the transport and resumes
        reading. See HTTPConnection.switch_protocols.
        """
        return self.conn.switch_protocols(self, header_block)

    # -- request body (connection side) ------------------------------------------
    def feed_body(self, chunk: bytes) -> None:
        """The next bytes of the request body (de-chunked), as the connection reads them."""
        self.body_received += len(chunk)
        if self.discard_body:
            return
        if self._chunks is None:
            self._chunks = [chunk]
        else:
            self._chunks.append(chunk)
        self.buffered += len(chunk)
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def end_body(self) -> None:
        """The request body is complete."""
        self.body_complete = True
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def client_lost(self) -> None:
        """No more body will come (the client left, half-closed or broke its body):
        wake the handler if it waits for the body or for the disconnect."""
        for waiter in (self.body_waiter, self._disconnect_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _take_buffered(self) -> bytes:
        """The body received and not yet read, as one piece; the buffer is then empty."""
        chunks = self._chunks
        self._chunks = None
        self.buffered = 0
        if not chunks:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def skip_unread_body(self) -> None:
        """The handler is done: drop what it left unread, and whatever of the body still comes."""
        self.discard_body = True
        self._chunks = None
        self.buffered = 0

    @property
    def body_bytes_sent(self) -> int:
        """The response body's bytes as sent: 0 when it has none (HEAD, 204, 304),
        where ``bytes_sent`` counts the body a GET would have had."""
        return 0 if self._no_body else self.bytes_sent

    # -- request body (interface side) -------------------------------------------
    async def receive_body(self) -> tuple[bytes, bool]:
        """The next part of the body (everything buffered) and whether more follows.

        Raises ClientDisconnected if the client goes away before the body ends.
        """
        while True:
            if self._chunks:
                data = self._take_buffered()
                self.conn.body_consumed()
                return data, not self.body_complete
            if self.body_complete:
                return b"", False
            if self.conn.closed or self.conn.peer_eof or self.body_error is not None:
                raise ClientDisconnected("client disconnected before the body was read")
            if self.expect_continue and not self.continue_sent and not self.response_started:
                self.continue_sent = True
                self.conn.write(CONTINUE_100)
            self.body_waiter = self.conn.loop.create_future()
            await self.body_waiter
            self.body_waiter = None

    async def read_body(self) -> bytes:
        """The whole remaining body (bounded by Config.max_body_size)."""
        chunks = self._chunks
        if self.body_complete and (chunks is None or len(chunks) == 1):
            return self._take_buffered()
        parts = []
        more = True
        while more:
            data, more = await self.receive_body()
            parts.append(data)
        return b"".join(parts)

    async def wait_disconnect(self) -> None:
        """Returns when the client has gone (or at once if it already has)."""
        if self.conn.closed or self.conn.peer_eof:
            return
        self._disconnect_waiter = self.conn.loop.create_future()
        await self._disconnect_waiter

    # -- response -------------------------------------------------------------------
    def _refuse(self) -> None:
        if self.body_error is not None:
            # The request body was malformed: the client gets that error (sent by
            # the engine when the handler ends), not the handler's response.
            raise ClientDisconnected("the request body was malformed")
        raise AppError("response already started")

    def unread_body_closes(self) -> bool:
        """Answering before the body is read: must the connection close after?

        A small rest of a known-length body is skipped to keep the connection;
        a large or chunked rest, or a client still waiting for 100-continue
        (it may never send the body), means closing, announced in the response.
        """
        if self.expect_continue and not self.continue_sent:
            return True
        length = self.conn.declared_length(self)
        return length < 0 or length - self.body_received > _MAX_DISCARD

    def _framing_close(self, close: bool) -> bytes:
        if (
            close
            or not self.keep_alive
            or self.conn.state.draining
            or (not self.body_complete and self.unread_body_closes())
        ):
            self.keep_alive = False
            return _CLOSE
        if self.http_version == "1.0":
            return _KEEP_ALIVE
        return b""

    def respond(self, status: int, header_block: bytes, body: bytes, close: bool = False) -> None:
        """Send a whole response in one write.

        ``header_block`` is the app's own header lines, already validated and free of
        framing headers (see http11.build_head); the engine adds the rest. This is
        the hot path of every small response, hence the inlining.
        """
        if self.response_started or self.body_error is not None:
            self._refuse()
        self.response_started = self.response_complete = True
        self.status = status
        conn = self.conn
        state = conn.state
        if (
            close
            or not self.keep_alive
            or state.draining
            or (not self.body_complete and self.unread_body_closes())
        ):
            self.keep_alive = False
            connection = _CLOSE
        elif self.http_version == "1.0":
            connection = _KEEP_ALIVE
        else:
            connection = b""
        line = _BODY_STATUS_LINES.get(status)
        if line is None:  # 1xx, 204, 304 (no body, no length) or an invalid status
            data = b"".join((status_line(status), state.default_headers, header_block, connection, _CRLF))
        else:
            n = len(body)
            self.bytes_sent = n
            data = b"".join(
                (
                    line,
                    state.default_headers,
                    _CONTENT_LENGTHS[n] if n < 4096 else b"content-length: %d\r\n" % n,
                    header_block,
                    connection,
                    _CRLF,
                    b"" if self._no_body else body,
                )
            )
        if conn.batch is not None:
            conn.write(data)
        elif not conn.closed:
            conn.transport.write(data)

    def start(
        self, status: int, header_block: bytes, content_length: int | None, close: bool = False
    ) -> None:
        """Send the response head; the body follows through ``write``/``end``."""
        if self.response_started or self.body_error is not None:
            self._refuse()
        line = status_line(status)
        self.response_started = True
        self.status = status
        framing = b""
        if status in NO_BODY_STATUSES:
            self._no_body = True
        elif content_length is not None:
            framing = b"content-length: %d\r\n" % content_length
            self._remaining = content_length
        elif self.http_version == "1.1":
            if not self._no_body:
                framing = _CHUNKED
                self._chunked = True
        else:
            close = True  # HTTP/1.0 and no length: the body ends at close
        self.conn.write(
            b"".join(
                (
                    line,
                    self.conn.state.default_headers,
                    framing,
                    header_block,
                    self._framing_close(close),
                    _CRLF,
                )
            )
        )

    def _body_goes_out(self, data: bytes, more: bool) -> bool:
        """Check a body write against the response state (every protocol's ``write``
        and ``write_file`` start here): AppError when out of order, False when
        nothing is to be sent (the closing empty write, or a body that is not sent)."""
        if not self.response_started:
            raise AppError("response body sent before the response started")
        if self.response_complete:
            if data or more:
                raise AppError("response already complete")
            return False
        if self._no_body:  # HEAD, 204, 304: the app's body is not sent or checked
            if not more:
                self.response_complete = True
            return False
        return True

    def _body_fits(self, size: int, more: bool) -> None:
        """What every body write checks once ``_body_goes_out`` let it through, counting
        ``size`` bytes against a declared Content-Length (``_remaining``):
        ClientDisconnected once the client is gone; AppError, the response aborted,
        when the body overruns the length or (``more`` False) ends short."""
        if self.disconnected:
            raise ClientDisconnected("client disconnected")
        remaining = self._remaining
        if remaining is None:
            return
        remaining -= size
        self._remaining = remaining
        if remaining < 0 or (not more and remaining > 0):
            off = "more" if remaining < 0 else "less"
            raise self._abort_body(
                f"response body length does not match Content-Length ({off} than declared)"
            )

    def _abort_body(self, message: str) -> AppError:
        """The response body is broken (wrong length, a file shrank): end it here,
        closing the connection once what was written is flushed; the error to raise."""
        self.response_complete = True
        self.keep_alive = False
        self.conn.abort_after_write()
        return AppError(message)

    async def write(self, data: bytes, more: bool = True) -> None:
        """Send part of the body, waiting while the client is not keeping up."""
        if not self._body_goes_out(data, more):
            return
        self._body_fits(len(data), more)
        conn = self.conn
        if not more:
            self.response_complete = True
        self.bytes_sent += len(data)
        if self._chunked:
            if len(data) >= 16384:
                # Large chunks go out as a vector: formatting them into one bytes
                # object copied each twice (1 MiB download in 64 KiB chunks: 2,255
                # responses/s against Granian's 2,928).
                tail = b"\r\n" + LAST_CHUNK if not more else b"\r\n"
                conn.write_parts((b"%x\r\n" % len(data), data, tail))
            elif data:
                out = b"%x\r\n%s\r\n" % (len(data), data)
                conn.write(out + LAST_CHUNK if not more else out)
            elif not more:
                conn.write(LAST_CHUNK)
        elif data:
            conn.write(data)
        if conn.write_paused:
            await conn.drain()

    async def end(self) -> None:
        await self.write(b"", more=False)
