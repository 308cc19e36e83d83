"""One HTTP/2 stream as an Exchange (the contract of exchange.py).

An ``H2Exchange`` is made by the connection (http2.py) for each request stream. It
keeps Exchange's request-body and response API; what differs is underneath: the
response goes out through the codec's stream handle (HEADERS, DATA, trailers), a
stream ends with END_STREAM or RST_STREAM instead of closing the connection, and
the writer waits on the peer's flow-control window as well as the socket. Its
``http_version`` is "2". How a handler's failure or early return ends the stream
(a 500 if nothing was sent, else RST_STREAM) is here too; the connection's part
of a stream's end (forgetting it, GOAWAY, closing) is in http2.py. An extended
CONNECT for ``websocket`` (RFC 8441) is dispatched as an upgrade; its
``switch_protocols`` answers 200 and hands the stream over as a transport
(h2tunnel.py).
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ..logs import log_access
from .errors import (
    INTERNAL_ERROR,
    NO_ERROR,
    AppError,
    ClientDisconnected,
    ProtocolError,
    log_failure,
    log_unfinished,
)
from .exchange import Exchange
from .h2flow import INITIAL_WINDOW
from .h2settings import serves_websockets
from .http11 import NO_BODY_STATUSES, ResponseHead

if TYPE_CHECKING:
    from .http2 import HTTP2Connection

access_logger = logging.getLogger("blazeasgi.access")

TEXT_PLAIN = b"content-type: text/plain; charset=utf-8\r\n"


class Tunnel(Protocol):
    """What an extended CONNECT stream's exchange hands its bytes to once
    switched (h2tunnel.StreamTunnel)."""

    finished: bool

    def received(self, data: bytes) -> None: ...

    def ended(self) -> None: ...

    def lost(self) -> None: ...

    def handler_ended(self, exc: BaseException | None) -> None: ...


class H2Exchange(Exchange):
    """One stream's request and response (the contract of exchange.py)."""

    #: The stream was reset, by the client or by the server.
    reset = False
    _ended = False  # END_STREAM sent
    _window_waiter: asyncio.Future[None] | None = None
    #: When its handler started (perf_counter), for the access line; set by the
    #: connection only when access logging is on.
    started_at = 0.0
    #: Its handler was started (the stream is then the runner's until stream_done).
    dispatched = False
    #: Receive-window credit the codec granted and the stream holds until its
    #: handler has read what is buffered (see h2flow); the credit given so far is
    #: ``credit_given`` (set in __init__: mypyc takes only literals as defaults).
    held_credit = 0
    #: When the request last made progress (opened, DATA), stamped as the sweep
    #: reads stamps (endings.sweep); 0.0 once its body is complete.
    body_since = 0.0
    #: The tunnel's reader is paused: the stream's window credit is held (h2flow).
    read_paused = False

    def __init__(
        self,
        h2: HTTP2Connection,
        stream_id: int,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        # Exchange.__init__ is not called: its ``conn`` is the HTTP/1.1 connection,
        # and every method that uses it is replaced here.
        self.h2 = h2
        self.info = h2.info
        self.stream_id = stream_id
        self.handle = h2.codec.stream(stream_id)
        self.method = method
        self.target = target
        self.path, _, self.query_string = target.partition(b"?")
        self.headers = headers
        self.http_version = "2"
        self.credit_given = INITIAL_WINDOW
        #: An extended CONNECT stream after its 200 (switch_protocols): its DATA goes
        #: there. (Set here: mypyc leaves a class-level None unset for this type.)
        self.tunnel: Tunnel | None = None
        self.keep_alive = True
        if method == "HEAD":
            self._no_body = True

    # -- connection facts ----------------------------------------------------------
    @property
    def disconnected(self) -> bool:
        return self.reset or self.h2.closed

    @property
    def write_paused(self) -> bool:
        return self.h2.write_paused or (self.handle.pending_bytes or 0) > self.h2.send_high_water

    def opens_tunnel(self, protocol: bytes | None) -> bool:
        """An extended CONNECT (RFC 8441) for ``protocol``: True, and the request is
        dispatched as an upgrade to it, when the server serves it (``websocket``, with
        WebSockets on); else the engine answers 501."""
        if protocol is None or protocol.lower() != b"websocket" or not serves_websockets(self.h2.config.ws):
            return False
        self.upgrade = b"websocket"
        self.body_since = 0.0  # its "body" is the tunnel: not timed as a request body
        return True

    def switch_protocols(self, header_block: bytes) -> tuple[asyncio.Transport, bytes]:
        """Answer the extended CONNECT with 200 (``header_block``'s fields) and hand
        the stream over as a transport (h2tunnel), with the DATA received so far."""
        if self.upgrade is None or self.response_started or self.body_error is not None:
            raise AppError("switch_protocols needs an unanswered extended CONNECT request")
        if self.reset or self.h2.closed:
            raise ClientDisconnected("client disconnected")
        from .h2tunnel import StreamTunnel  # (an extended CONNECT is rare: imported late)

        self.response_started = self.response_complete = True
        self.status = 200
        self.handle.send_response(200, self.h2.field_cache.fields(header_block), False)
        self.h2.flush()
        leftover = self._take_buffered()
        tunnel = StreamTunnel(self, self.body_received)
        self.tunnel = tunnel
        self.read_paused = True  # until the new protocol starts reading
        return tunnel, leftover

    def feed_body(self, chunk: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is None:
            super().feed_body(chunk)
        else:
            tunnel.received(chunk)

    def end_body(self) -> None:
        super().end_body()
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.ended()

    def client_lost(self) -> None:
        super().client_lost()
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.lost()

    def window_opened(self) -> None:
        """The peer opened its flow-control window (WINDOW_UPDATE) for this stream
        or the connection: wake a writer waiting for it."""
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- request body ----------------------------------------------------------------
    async def receive_body(self) -> tuple[bytes, bool]:
        while True:
            if self._chunks:
                data = self._take_buffered()
                self.h2.body_consumed(self)
                return data, not self.body_complete
            if self.body_complete:
                return b"", False
            if self.reset or self.h2.closed or self.body_error is not None:
                raise ClientDisconnected("client disconnected before the body was read")
            if self.expect_continue and not self.continue_sent and not self.response_started:
                self.continue_sent = True
                self.handle.send_informational(100)
                self.h2.flush()
            self.body_waiter = self.h2.loop.create_future()
            await self.body_waiter
            self.body_waiter = None

    async def wait_disconnect(self) -> None:
        if self.reset or self.h2.closed:
            return
        self._disconnect_waiter = self.h2.loop.create_future()
        await self._disconnect_waiter

    # -- response ----------------------------------------------------------------------
    def _fields(self, header_block: bytes, content_length: int | None) -> list[tuple[bytes, bytes]]:
        return self.h2.field_cache.response_fields(
            self.h2.state.default_headers, header_block, content_length
        )

    def respond(self, status: int, header_block: bytes, body: bytes, close: bool = False) -> None:
        if self.response_started or self.body_error is not None:
            self._refuse()
        self.response_started = self.response_complete = True
        self.status = status
        if self.reset or self.h2.closed:
            return
        handle = self.handle
        if status in NO_BODY_STATUSES:
            handle.send_response(status, self._fields(header_block, None), True)
        else:
            self.bytes_sent = len(body)
            fields = self._fields(header_block, len(body))
            if self._no_body or not body:
                handle.send_response(status, fields, True)
            else:
                handle.send_response(status, fields, False)
                handle.send_data(body)
                handle.end_message()
        self._ended = True
        h2 = self.h2
        if not h2.receiving:  # (flush, inlined: every small response passes here)
            h2.flush_now()

    def start(
        self, status: int, header_block: bytes, content_length: int | None, close: bool = False
    ) -> None:
        if self.response_started or self.body_error is not None:
            self._refuse()
        if not 100 <= status <= 599:
            raise AppError(f"invalid HTTP status code {status!r}")
        self.response_started = True
        self.status = status
        if status in NO_BODY_STATUSES:
            self._no_body = True
            content_length = None
        elif content_length is not None:
            self._remaining = content_length
        if self.reset or self.h2.closed:
            return
        self._ended = self._no_body
        self.handle.send_response(status, self._fields(header_block, content_length), self._no_body)
        self.h2.flush()

    async def write(self, data: bytes, more: bool = True) -> None:
        if not self._body_goes_out(data, more):
            return
        self._body_fits(len(data), more)
        await self._send(data, more)

    async def _send(self, data: bytes, more: bool) -> None:
        """Queue ``data`` on the stream (ending it unless ``more``), then wait while
        the peer does not take it. The checks were made (``_body_fits``)."""
        if not more:
            self.response_complete = True
        self.bytes_sent += len(data)
        handle = self.handle
        if data:
            handle.send_data(data)
        if not more:
            handle.end_message()
            self._ended = True
        h2 = self.h2
        h2.flush()
        if h2.write_paused or (handle.pending_bytes or 0) > h2.send_high_water:
            await self.wait_for_window()

    async def wait_for_window(self) -> None:
        """Wait until the peer has taken what the codec holds for this stream."""
        h2 = self.h2
        while True:
            if self.reset or h2.closed:
                raise ClientDisconnected("client disconnected")
            if h2.write_paused:
                await h2.drain()
            elif (self.handle.pending_bytes or 0) > h2.send_high_water:
                self._window_waiter = h2.loop.create_future()
                await self._window_waiter
                self._window_waiter = None
            else:
                return

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> None:
        await self.write_file(file, offset, count)
        await self.write(b"", more=False)

    async def write_file(self, file: BinaryIO, offset: int, count: int) -> None:
        """As Exchange.write_file, by reads and writes: HTTP/2 frames every byte."""
        if not self._body_goes_out(b"", True) or count <= 0:
            return
        self._body_fits(count, True)
        file.seek(offset)
        left = count
        while left > 0:
            data = file.read(min(left, 65536))
            if not data:
                raise self._abort_body("file shrank while being sent")
            left -= len(data)
            if self.disconnected:
                raise ClientDisconnected("client disconnected")
            await self._send(data, True)

    def _abort_body(self, message: str) -> AppError:
        """As Exchange._abort_body: the stream ends with RST_STREAM."""
        self.response_complete = True
        self.reset_stream(INTERNAL_ERROR)
        return AppError(message)

    async def end_with_trailers(self, trailer_block: bytes) -> None:
        if self._no_body or self.response_complete or not self.response_started:
            await self.write(b"", more=False)
            return
        if self.reset or self.h2.closed:
            raise ClientDisconnected("client disconnected")
        self.response_complete = self._ended = True
        self.handle.end_message(self.h2.field_cache.fields(trailer_block))
        self.h2.flush()

    def send_informational(self, status: int, header_block: bytes) -> bool:
        if not 100 <= status <= 199 or status == 101:
            raise AppError(f"invalid informational status {status!r}")
        if self.response_started or self.reset or self.h2.closed:
            return False
        self.handle.send_informational(status, self.h2.field_cache.fields(header_block))
        self.h2.flush()
        return True

    # -- engine side -----------------------------------------------------------------
    def reset_stream(self, error_code: int) -> None:
        """End the stream abruptly (RST_STREAM), waking anything waiting on it."""
        if self.reset:
            return
        self.reset = True
        if not self.h2.closed:
            self.handle.reset(error_code)
            self.h2.flush()
        self.client_lost()

    def answer_error(self, error: ProtocolError) -> None:
        """Answer the request with ``error`` (the engine refuses it)."""
        refused, self.body_error = self.body_error, None  # (respond refuses while set)
        self.respond(error.status, TEXT_PLAIN, error.message.encode("utf-8", "replace") + b"\n")
        self.body_error = refused

    def fail_body(self, error: ProtocolError) -> None:
        """The request body is refused (too large, stalled); what came of it is dropped.

        Before the handler starts, or once it has answered, the stream ends now
        (``error`` answered if nothing was sent). While it runs unanswered, its reads
        fail as if the client had gone and the client gets ``error`` when it ends, as
        over HTTP/1.1 (Exchange._refuse): the app's own response is refused.
        """
        self.body_error = error
        self._chunks = None
        self.buffered = 0
        if self.response_started or not self.dispatched:
            if not self.response_started:
                self.answer_error(error)
            self.reset_stream(NO_ERROR if self.response_complete else INTERNAL_ERROR)
        else:
            self.client_lost()

    def log_access(self) -> None:
        if self.tunnel is not None or not access_logger.isEnabledFor(logging.INFO):
            return  # (a tunnel's WebSocket writes its own lines: accepted, closed)
        duration_ms = (perf_counter() - self.started_at) * 1000.0
        body_bytes = 0 if self._no_body else self.bytes_sent
        log_access(self.h2.config.access_log_format, self.info.client, self, body_bytes, duration_ms)

    def handler_done(self, result: Any, exc: BaseException | None) -> None:
        """The runner's callback (tasks.DoneCallback). A tunnel still open keeps
        its stream until it is over (h2tunnel)."""
        tunnel = self.tunnel
        if tunnel is not None and not tunnel.finished:
            tunnel.handler_ended(exc)
        else:
            self.h2.stream_done(self, exc)

    def failed(self, exc: BaseException) -> None:
        """The handler raised ``exc``: log it (unless the client caused it) and end
        the stream: a 500 if nothing was sent, else RST_STREAM."""
        h2 = self.h2
        log_failure(self.method, self.target, exc, self.reset or h2.closed or self.body_error is not None)
        if self.reset or h2.closed:
            return
        if not self.response_started:
            if self.body_error is not None:
                self.answer_error(self.body_error)
            else:
                self.respond(500, TEXT_PLAIN, b"Internal Server Error")
        elif not self.response_complete:
            self.response_complete = True
            self.reset_stream(INTERNAL_ERROR)

    def unfinished(self) -> None:
        """The handler returned without completing its response: send a held head
        (a response without a body), else a 500, else reset the stream; the
        refusal of its body instead, if it was refused (fail_body)."""
        if self.reset or self.h2.closed:
            return
        if not self.response_started and self.body_error is not None:
            self.answer_error(self.body_error)
            return
        if not self.response_started:
            head: ResponseHead | None = self.held
            if head is not None:  # a head with no body
                self.start(self.status, head.block, head.content_length)
                if head.content_length:
                    self.response_complete = True
                    self.reset_stream(INTERNAL_ERROR)
                else:
                    self.response_complete = self._ended = True
                    if not self._no_body:
                        self.handle.end_message()
                return
            log_unfinished(self.method, self.target, False)
            self.respond(500, TEXT_PLAIN, b"Internal Server Error")
            return
        log_unfinished(self.method, self.target, True)
        self.response_complete = True
        self.reset_stream(INTERNAL_ERROR)
