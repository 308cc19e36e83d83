"""HTTP/2 (RFC 9113) on the engine: every stream is an Exchange.

An ``HTTP2Connection`` owns the socket once HTTP/2 is chosen: by ALPN ``h2`` over TLS,
or, on the cleartext port, by the connection preface in a connection's first bytes
(prior-knowledge h2c; ``HTTPConnection`` sniffs it and calls ``take_over``).
``Upgrade: h2c`` is not supported (RFC 9113 §3.1 deprecates it).

The codec is zttp (sans-IO, Zig core), chosen by measurement against h2
(benchmarks/h2codec.py: parsing a GET's HEADERS and writing a HEADERS + DATA
response costs ~3 us of CPU with zttp against ~140 us with h2). zttp answers SETTINGS
and PING itself, enforces its own limits (128 concurrent streams, 64 KiB header
lists) and returns receive-window credit as it parses, so:

* response bodies: what the peer's window does not take waits in the codec; a
  writer waits once more than ``write_high_water`` bytes wait there (a stalled
  reader costs that much per stream, plus one write);
* request bodies: the codec cannot hold a stream's credit back, so once a stream
  has ``read_high_water`` unread bytes the whole connection stops reading (as
  HTTP/1.1 does) until its handler reads them.

Each stream's Exchange (``H2Exchange``) keeps the contract of exchange.py; its
``http_version`` is "2". A failed handler ends its stream with RST_STREAM (or a
500 if nothing was sent); a client's RST_STREAM is a disconnect to the handler;
the server's graceful shutdown sends GOAWAY and lets open streams finish.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any, BinaryIO

try:
    import zttp
except ImportError:  # pragma: no cover - the codec is an optional dependency
    zttp = None  # type: ignore[assignment]

from ..logs import log_access
from .conninfo import ConnectionInfo
from .endings import sweep
from .errors import AppError, ClientDisconnected, ProtocolError
from .exchange import Exchange
from .http11 import NO_BODY_STATUSES, ResponseHead
from .requestchecks import NOTED_FIELDS
from .transports import drain_writes, release_drained, unread_bytes

if TYPE_CHECKING:
    from .server import ServerState

logger = logging.getLogger("blazeasgi.error")
access_logger = logging.getLogger("blazeasgi.access")

#: The codec is installed: HTTP/2 can be served.
AVAILABLE = zttp is not None

# RFC 9113 §7 error codes.
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
REFUSED_STREAM = 0x7

#: Streams a client may open on one connection; then GOAWAY (NO_ERROR), and it
#: reconnects, as nginx does after keepalive_requests. zttp 0.0.35 ends a
#: connection at its 4,097th stream with GOAWAY ENHANCE_YOUR_CALM, dropping the
#: streams in flight: this stays below that by twice its 128 concurrent streams.
MAX_STREAMS_PER_CONNECTION = 4096 - 2 * 128

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")}
#: Connection-specific fields, which HTTP/2 forbids (RFC 9113 §8.2.2).
_CONNECTION_FIELDS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_TEXT_PLAIN = b"content-type: text/plain; charset=utf-8\r\n"
#: Converted header blocks kept per connection (an app sends the same few).
_FIELD_CACHE_SIZE = 64


def fields_of(block: bytes) -> list[tuple[bytes, bytes]]:
    """HTTP/1.1 header lines (validated, as http11.build_head makes them) as HTTP/2
    fields: names lower-cased, connection-specific fields dropped."""
    fields = []
    for line in block.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            name = name.lower()
            if name not in _CONNECTION_FIELDS:
                fields.append((name, value))
    return fields


def take_over(state: ServerState, info: ConnectionInfo, transport: asyncio.Transport, data: bytes) -> None:
    """Serve HTTP/2 on ``transport`` from here on; ``data``: the bytes read so far."""
    HTTP2Connection(state, info, transport).start(data)


class H2Exchange(Exchange):
    """One stream's request and response (the contract of exchange.py)."""

    #: The stream was reset, by the client or by the server.
    reset = False
    _ended = False  # END_STREAM sent
    _window_waiter: asyncio.Future[None] | None = None
    _started_at = 0.0
    #: Its handler was started (the stream is then the runner's until stream_done).
    dispatched = False

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

    def switch_protocols(self, header_block: bytes) -> tuple[asyncio.Transport, bytes]:
        raise AppError("there is no protocol switch on an HTTP/2 stream")

    def client_lost(self) -> None:
        super().client_lost()
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _window_opened(self) -> None:
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- request body ----------------------------------------------------------------
    async def receive_body(self) -> tuple[bytes, bool]:
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self._chunks = None
                self.buffered = 0
                self.h2.body_consumed()
                return data, not self.body_complete
            if self.body_complete:
                return b"", False
            if self.reset or self.h2.closed or self.body_error is not None:
                raise ClientDisconnected("client disconnected before the body was read")
            if self.expect_continue and not self._continue_sent and not self.response_started:
                self._continue_sent = True
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
        return self.h2.response_fields(header_block, content_length)

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
        if not self.response_started:
            raise AppError("response body sent before the response started")
        if self.response_complete:
            if data or more:
                raise AppError("response already complete")
            return
        if self._no_body:  # HEAD, 204, 304: the app's body is not sent or checked
            if not more:
                self.response_complete = True
            return
        if self.reset or self.h2.closed:
            raise ClientDisconnected("client disconnected")
        remaining = self._remaining
        if remaining is not None:
            remaining -= len(data)
            self._remaining = remaining
            if remaining < 0 or (not more and remaining > 0):
                self.response_complete = True
                self.reset_stream(INTERNAL_ERROR)
                raise AppError(
                    f"response body length does not match Content-Length "
                    f"({'more' if remaining < 0 else 'less'} than declared)"
                )
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
            await self._wait_for_window()

    async def _wait_for_window(self) -> None:
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
        if not self.response_started:
            raise AppError("response body sent before the response started")
        if self.response_complete:
            raise AppError("response already complete")
        if self._no_body or count <= 0:
            return
        if self._remaining is not None and count > self._remaining:
            self.response_complete = True
            self.reset_stream(INTERNAL_ERROR)
            raise AppError("response body length does not match Content-Length (more than declared)")
        file.seek(offset)
        left = count
        while left > 0:
            data = file.read(min(left, 65536))
            if not data:
                self.response_complete = True
                self.reset_stream(INTERNAL_ERROR)
                raise AppError("file shrank while being sent")
            left -= len(data)
            await self.write(data, more=True)

    async def end_with_trailers(self, trailer_block: bytes) -> None:
        if self._no_body or self.response_complete or not self.response_started:
            await self.write(b"", more=False)
            return
        if self.reset or self.h2.closed:
            raise ClientDisconnected("client disconnected")
        self.response_complete = self._ended = True
        self.handle.end_message(self.h2.fields(trailer_block))
        self.h2.flush()

    def send_informational(self, status: int, header_block: bytes) -> bool:
        if not 100 <= status <= 199 or status == 101:
            raise AppError(f"invalid informational status {status!r}")
        if self.response_started or self.reset or self.h2.closed:
            return False
        self.handle.send_informational(status, self.h2.fields(header_block))
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

    def handler_done(self, result: Any, exc: BaseException | None) -> None:
        """The runner's callback (tasks.DoneCallback)."""
        self.h2.stream_done(self, exc)


class HTTP2Connection(asyncio.Protocol):
    """One HTTP/2 connection: the codec, its streams and the socket."""

    def __init__(self, state: ServerState, info: ConnectionInfo, transport: asyncio.Transport) -> None:
        self.state = state
        self.config = state.config
        self.loop = state.loop
        self.info = info
        self.transport = transport
        self.codec = zttp.Connection(zttp.SERVER, zttp.HTTP2)
        #: Open streams by id: a request being read or a handler running.
        self.streams: dict[int, H2Exchange] = {}
        self.closed = False
        self.write_paused = False
        #: Bytes the codec may hold for one stream before its writer waits.
        self.send_high_water = self.config.write_high_water
        self._drain_waiters: list[asyncio.Future[None]] = []
        #: Inside data_received: writes wait for its one flush at the end.
        self.receiving = False
        #: A stream's unread body is over read_high_water (see _on_data).
        self._body_paused = False
        #: The transport is reading (see _set_reading).
        self._reading = True
        self._goaway_sent = False
        self._peer_goaway = False
        self._last_stream = 0
        self._streams_left = MAX_STREAMS_PER_CONNECTION
        self._max_target = self.config.max_target_size
        self._max_headers = self.config.max_header_count
        self._max_body = self.config.max_body_size or (1 << 62)
        self._field_cache: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self._default_block = b""
        self._default_fields: list[tuple[bytes, bytes]] = []
        self._response_cache: dict[tuple[bytes, int | None], list[tuple[bytes, bytes]]] = {}
        # Timeouts, as HTTPConnection keeps them (see connection.py and Server._on_tick):
        # an HTTP/2 connection with no open stream is idle; heads are not timed yet.
        self._idle_since = state.clock
        self._head_since = 0.0

    def start(self, data: bytes) -> None:
        self.transport.set_protocol(self)
        self.state.connections.add(self)
        self.codec.initiate_connection()
        if data:
            self.data_received(data)
        else:
            self.flush()

    # -- asyncio.Protocol ----------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        codec = self.codec
        started: list[H2Exchange] = []
        self.receiving = True
        try:
            try:
                codec.receive_data(data)
                self._read_events(started)
            except zttp.ProtocolError as exc:
                # The codec has queued its GOAWAY: send it and close.
                logger.debug("HTTP/2 connection error: %s", exc)
                self._goaway_sent = True
                self.flush_now()
                self.close()
                return
            for ex in started:
                if ex.reset:  # by the client, or refused (e.g. 413) before it started
                    self._forget(ex)
                else:
                    self._dispatch(ex)
        finally:
            self.receiving = False
        if self._peer_goaway and not self.streams:
            # The client is going away with nothing in flight (or its last stream
            # ended before its GOAWAY arrived): nothing more will come.
            self.close()
            return
        self.flush_now()

    def _read_events(self, started: list[H2Exchange]) -> None:
        codec = self.codec
        streams = self.streams
        Request, Data, EndOfMessage = zttp.Request, zttp.Data, zttp.EndOfMessage
        while True:
            event = codec.next_event()
            kind = type(event)
            if kind is Request:
                ex = self._on_request(event)  # type: ignore[arg-type]
                if ex is not None:
                    started.append(ex)
            elif kind is Data:
                ex = streams.get(event.stream_id)  # type: ignore[union-attr]
                if ex is not None:
                    self._on_data(ex, event.data)  # type: ignore[union-attr]
            elif kind is EndOfMessage:
                ex = streams.get(event.stream_id)  # type: ignore[union-attr]
                if ex is not None:
                    ex.end_body()
            elif event is zttp.NEED_DATA:
                return
            elif kind is zttp.RstStream:
                ex = streams.get(event.stream_id)  # type: ignore[union-attr]
                if ex is not None:
                    ex.reset = True
                    ex.client_lost()
                    if not ex.dispatched:  # reset before its handler started: forget it
                        self._forget(ex)
            elif kind is zttp.WindowUpdate:
                self._on_window_update(event.stream_id)  # type: ignore[union-attr]
            elif kind is zttp.GoAway:
                self._peer_goaway = True
            elif event is zttp.CONNECTION_CLOSED:
                return
            # Settings and Ping: the codec answers them itself.

    def _on_request(self, event: zttp.Request) -> H2Exchange | None:
        stream_id = event.stream_id
        self._last_stream = stream_id
        headers = event.headers
        if type(headers) is not list:
            headers = headers.to_list(lowercase_names=True)  # type: ignore[union-attr]
        raw_method = event.method
        method = _METHODS.get(raw_method) or raw_method.decode("ascii", "replace")
        ex = H2Exchange(self, stream_id, method, event.target, headers)
        self.streams[stream_id] = ex
        self._idle_since = 0.0
        if event.end_stream:
            ex.body_complete = True
        names = dict(headers)  # (one C call; a loop over the names cost more)
        if not NOTED_FIELDS.isdisjoint(names):  # TE, proxy fields: see Exchange.noted_fields
            ex.noted_fields = True
        if not event.end_stream and names.get(b"expect", b"").lower() == b"100-continue":
            # (zttp's Request.expect_continue is HTTP/1.1's only)
            ex.expect_continue = True
        if self._goaway_sent or self.state.draining:
            ex.reset_stream(REFUSED_STREAM)
            self._forget(ex)
            return None
        self._streams_left -= 1
        if self._streams_left <= 0:  # this one is served, and it is the last
            self.announce_shutdown()
        target = ex.target
        if (
            target[:1] == b"/"
            and len(target) <= self._max_target
            and len(headers) <= self._max_headers
            and event.protocol is None
        ):
            return ex  # (CONNECT has no :path: zttp refuses it, or it has a :protocol)
        error = self._check_request(ex, event)
        if error is not None:
            self._answer_error(ex, error)
            if not ex.body_complete:
                ex.reset_stream(NO_ERROR)
            self._forget(ex)
            return None
        return ex

    def _check_request(self, ex: H2Exchange, event: zttp.Request) -> ProtocolError | None:
        """The engine's own limits and what it does not serve yet (cold unless broken)."""
        target = ex.target
        if len(target) > self._max_target:
            return ProtocolError(414, "URI Too Long")
        if len(ex.headers) > self._max_headers:
            return ProtocolError(431, "Too many header fields")
        if event.protocol is not None or ex.method == "CONNECT":
            return ProtocolError(501, "CONNECT is not served over HTTP/2")
        if target[:1] != b"/" and not (target == b"*" and ex.method == "OPTIONS"):
            return ProtocolError(400, "Invalid request target")
        return None

    def _answer_error(self, ex: H2Exchange, error: ProtocolError) -> None:
        body = error.message.encode("utf-8", "replace") + b"\n"
        ex.respond(error.status, _TEXT_PLAIN, body)

    def _on_data(self, ex: H2Exchange, data: bytes) -> None:
        ex.feed_body(data)
        if ex.body_received > self._max_body:
            error = ProtocolError(413, "Content Too Large")
            ex.body_error = error
            if not ex.response_started:
                ex.body_error = None
                self._answer_error(ex, error)
                ex.body_error = error
            ex.reset_stream(NO_ERROR if ex.response_complete else INTERNAL_ERROR)
            return
        if ex.buffered > self.config.read_high_water and not self._body_paused:
            # zttp returns the stream's window as it parses: stop reading the socket.
            self._body_paused = True
            self._set_reading()

    def body_consumed(self) -> None:
        """A handler read its stream's buffered body: resume reading if all are drained."""
        if self._body_paused:
            high = self.config.read_high_water
            if all(ex.buffered <= high for ex in self.streams.values()):
                self._body_paused = False
                self._set_reading()

    def _set_reading(self) -> None:
        """Read while no stream's body is backed up and the peer takes our writes.

        The second half is the guard against control-frame floods: the codec
        answers every PING and SETTINGS itself, so a client that sends them without
        reading the answers would otherwise grow our write buffer without bound.
        """
        reading = not self._body_paused and not self.write_paused
        if reading != self._reading and not self.closed:
            self._reading = reading
            if reading:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _on_window_update(self, stream_id: int) -> None:
        if stream_id == 0:
            for ex in self.streams.values():
                ex._window_opened()
        else:
            one = self.streams.get(stream_id)
            if one is not None:
                one._window_opened()

    # -- handlers ------------------------------------------------------------------------
    def _forget(self, ex: H2Exchange) -> None:
        self.streams.pop(ex.stream_id, None)
        if not self.streams:
            self._idle_since = self.state.clock

    def _dispatch(self, ex: H2Exchange) -> None:
        ex.dispatched = True
        if self.state.access_log:
            ex._started_at = perf_counter()
        try:
            pending = self.state.dispatch(ex)
        except Exception as exc:
            self.stream_done(ex, exc)
            return
        if pending is not None:
            self.state.runners.run(pending, ex.handler_done)
        else:
            self.stream_done(ex, None)

    def stream_done(self, ex: H2Exchange, exc: BaseException | None) -> None:
        """The stream's handler ended (``exc``: how it failed, if it did)."""
        if exc is not None:
            self._handler_failed(ex, exc)
        elif not ex.response_complete:
            self._unfinished(ex)
        if self.state.access_log:
            self._log_access(ex)
        if not ex.body_complete and not ex.reset:
            # Answered before the request body ended: the client may stop sending
            # (RFC 9113 §8.1).
            ex.reset_stream(NO_ERROR)
        self.streams.pop(ex.stream_id, None)
        if not self.streams:
            self._idle_since = self.state.clock
            if self.closed:
                self.state.connections.discard(self)
            elif self._goaway_sent or self._peer_goaway:
                self.close()
                return
        self.flush()

    def _handler_failed(self, ex: H2Exchange, exc: BaseException) -> None:
        if isinstance(exc, ClientDisconnected) and (ex.reset or self.closed or ex.body_error is not None):
            pass  # the client left or broke its body: not the app's fault, no log
        elif isinstance(exc, asyncio.CancelledError):
            logger.error("Handler for %s %s was cancelled", ex.method, _show(ex.target))
        else:
            logger.error("Exception in handler for %s %s", ex.method, _show(ex.target), exc_info=exc)
        if ex.reset or self.closed:
            return
        if not ex.response_started:
            ex.respond(500, _TEXT_PLAIN, b"Internal Server Error")
        elif not ex.response_complete:
            ex.response_complete = True
            ex.reset_stream(INTERNAL_ERROR)

    def _unfinished(self, ex: H2Exchange) -> None:
        """The handler returned without completing its response."""
        if ex.reset or self.closed:
            return
        if not ex.response_started:
            head: ResponseHead | None = ex.held
            if head is not None:  # a head with no body
                ex.start(ex.status, head.block, head.content_length)
                if head.content_length:
                    ex.response_complete = True
                    ex.reset_stream(INTERNAL_ERROR)
                else:
                    ex.response_complete = ex._ended = True
                    if not ex._no_body:
                        ex.handle.end_message()
                return
            logger.error("Handler for %s %s returned without a response", ex.method, _show(ex.target))
            ex.respond(500, _TEXT_PLAIN, b"Internal Server Error")
            return
        logger.error("Handler for %s %s returned before the response body ended", ex.method, _show(ex.target))
        ex.response_complete = True
        ex.reset_stream(INTERNAL_ERROR)

    def _log_access(self, ex: H2Exchange) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        duration_ms = (perf_counter() - ex._started_at) * 1000.0
        body_bytes = 0 if ex._no_body else ex.bytes_sent
        log_access(self.config.access_log_format, self.info.client, ex, body_bytes, duration_ms)

    # -- writing -------------------------------------------------------------------------
    def response_fields(self, header_block: bytes, content_length: int | None) -> list[tuple[bytes, bytes]]:
        """A response's fields: Date/Server, content-length, the app's. An app
        answers with the same few heads (and, when small, lengths) again and again,
        so the lists are kept, until the Date block changes (once a second)."""
        default = self.state.default_headers
        if default is not self._default_block:
            self._default_block = default
            self._default_fields = fields_of(default)
            self._response_cache.clear()
        key = (header_block, content_length)
        fields = self._response_cache.get(key)
        if fields is None:
            fields = list(self._default_fields)
            if content_length is not None:
                fields.append((b"content-length", b"%d" % content_length))
            if header_block:
                fields += self.fields(header_block)
            if len(self._response_cache) >= _FIELD_CACHE_SIZE:
                self._response_cache.clear()
            self._response_cache[key] = fields
        return fields

    def fields(self, block: bytes) -> list[tuple[bytes, bytes]]:
        cache = self._field_cache
        fields = cache.get(block)
        if fields is None:
            if len(cache) >= _FIELD_CACHE_SIZE:
                cache.clear()
            fields = cache[block] = fields_of(block)
        return fields

    def flush(self) -> None:
        """Send what the codec has queued, unless data_received will at its end."""
        if not self.receiving:
            self.flush_now()

    def flush_now(self) -> None:
        data = self.codec.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._set_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._set_reading()
        release_drained(self._drain_waiters)

    async def drain(self) -> None:
        await drain_writes(self, self._drain_waiters)

    # -- closing ---------------------------------------------------------------------------
    def eof_received(self) -> bool | None:
        for ex in list(self.streams.values()):
            ex.reset = True
            ex.client_lost()
        if not self.streams:
            self.close()
        return self.info.tls is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.info.closed = True
        for ex in list(self.streams.values()):
            ex.client_lost()
            if not ex.dispatched:  # read in the same data as a connection error
                self.streams.pop(ex.stream_id)
        release_drained(self._drain_waiters)
        if not self.streams:
            # Else handlers still run: the server counts this connection (the
            # graceful shutdown waits) until the last one ends (stream_done).
            self.state.connections.discard(self)

    def announce_shutdown(self) -> None:
        """The server drains: GOAWAY now, so the client opens no new stream; the
        connection closes once its open streams end."""
        if self._goaway_sent or self.closed:
            return
        self._goaway_sent = True
        self.codec.close(NO_ERROR, self._last_stream)
        self.flush()

    def close(self) -> None:
        if self.closed:
            return
        if not self._goaway_sent:
            self._goaway_sent = True
            self.codec.close(NO_ERROR, self._last_stream)
        self.flush_now()
        self.closed = self.info.closed = True
        self.transport.close()

    def is_idle(self) -> bool:
        return not self.streams and not self.codec.has_pending_send() and not self.unread_bytes()

    def unread_bytes(self) -> int:
        return unread_bytes(self.transport)

    def timeout_head(self) -> None:  # pragma: no cover - HTTP/2 heads are not timed yet
        self.close()

    def sweep(self, now: float, keep_alive: float, head_timeout: float) -> None:
        """The server's once-a-second look: idle past the keep-alive timeout closes."""
        sweep(self, now, keep_alive, head_timeout)


def _show(target: bytes) -> str:
    return target.decode("latin-1")
