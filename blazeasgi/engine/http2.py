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
from typing import TYPE_CHECKING

try:
    import zttp
except ImportError:  # pragma: no cover - the codec is an optional dependency
    zttp = None  # type: ignore[assignment]

from ..logs import log_access
from .conninfo import ConnectionInfo
from .endings import sweep
from .errors import ClientDisconnected, ProtocolError
from .h2exchange import INTERNAL_ERROR, NO_ERROR, REFUSED_STREAM, TEXT_PLAIN, H2Exchange
from .h2fields import FieldCache
from .requestchecks import NOTED_FIELDS
from .transports import release_drained, unread_bytes, wait_drained

if TYPE_CHECKING:
    from .server import ServerState

logger = logging.getLogger("blazeasgi.error")
access_logger = logging.getLogger("blazeasgi.access")

#: The codec is installed: HTTP/2 can be served.
AVAILABLE = zttp is not None

#: Streams a client may open on one connection; then GOAWAY (NO_ERROR), and it
#: reconnects, as nginx does after keepalive_requests. zttp 0.0.35 ends a
#: connection at its 4,097th stream with GOAWAY ENHANCE_YOUR_CALM, dropping the
#: streams in flight: this stays below that by twice its 128 concurrent streams.
MAX_STREAMS_PER_CONNECTION = 4096 - 2 * 128

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")}


def take_over(state: ServerState, info: ConnectionInfo, transport: asyncio.Transport, data: bytes) -> None:
    """Serve HTTP/2 on ``transport`` from here on; ``data``: the bytes read so far."""
    HTTP2Connection(state, info, transport).start(data)


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
        self.field_cache = FieldCache()
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
                    ex._end()
            elif event is zttp.NEED_DATA:
                return
            elif kind is zttp.RstStream:
                ex = streams.get(event.stream_id)  # type: ignore[union-attr]
                if ex is not None:
                    ex.reset = True
                    ex._lost()
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
        ex.respond(error.status, TEXT_PLAIN, body)

    def _on_data(self, ex: H2Exchange, data: bytes) -> None:
        ex._feed(data)
        if ex.body_received > self._max_body:
            error = ProtocolError(413, "Content Too Large")
            ex.body_error = error
            if not ex.response_started:
                ex.body_error = None
                self._answer_error(ex, error)
                ex.body_error = error
            ex.reset_stream(NO_ERROR if ex.response_complete else INTERNAL_ERROR)
            return
        if ex._buffered > self.config.read_high_water and not self._body_paused:
            # zttp returns the stream's window as it parses: stop reading the socket.
            self._body_paused = True
            self._set_reading()

    def body_consumed(self) -> None:
        """A handler read its stream's buffered body: resume reading if all are drained."""
        if self._body_paused:
            high = self.config.read_high_water
            if all(ex._buffered <= high for ex in self.streams.values()):
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
            ex.failed(exc)
        elif not ex.response_complete:
            ex.unfinished()
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

    def _log_access(self, ex: H2Exchange) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        duration_ms = (perf_counter() - ex._started_at) * 1000.0
        body_bytes = 0 if ex._no_body else ex.bytes_sent
        log_access(self.config.access_log_format, self.info.client, ex, body_bytes, duration_ms)

    # -- writing -------------------------------------------------------------------------
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
        if self.closed:
            raise ClientDisconnected("client disconnected")
        if not self.write_paused:
            return
        await wait_drained(self.loop, self._drain_waiters)
        if self.closed:
            raise ClientDisconnected("client disconnected")

    # -- closing ---------------------------------------------------------------------------
    def eof_received(self) -> bool | None:
        for ex in list(self.streams.values()):
            ex.reset = True
            ex._lost()
        if not self.streams:
            self.close()
        return self.info.tls is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.info.closed = True
        for ex in list(self.streams.values()):
            ex._lost()
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
