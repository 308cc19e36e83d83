"""HTTP/2 (RFC 9113) on the engine: every stream is an Exchange.

An ``HTTP2Connection`` owns the socket once HTTP/2 is chosen: by ALPN ``h2`` over TLS,
or, on the cleartext port, by the connection preface in a connection's first bytes
(prior-knowledge h2c; ``HTTPConnection`` sniffs it and calls ``take_over``).
``Upgrade: h2c`` is not supported (RFC 9113 §3.1 deprecates it).

The codec is zttp (sans-IO, Zig core), chosen by measurement against h2
(benchmarks/h2codec.py: parsing a GET's HEADERS and writing a HEADERS + DATA
response costs ~3 us of CPU with zttp against ~140 us with h2). zttp answers SETTINGS
and PING itself, enforces its own limits (h2limits.py) and returns receive-window
credit as it parses, so:

* response bodies: what the peer's window does not take waits in the codec; a
  writer waits once more than ``write_high_water`` bytes wait there (a stalled
  reader costs that much per stream, plus one write);
* request bodies: the engine holds back the codec's stream credit until the
  stream's handler has read its body (h2flow.py), so a handler that does not read
  costs at most one window (64 KiB) while the other streams flow; past
  UNREAD_STREAMS such windows the connection stops reading the socket.

Each stream's Exchange (``H2Exchange``) keeps the contract of exchange.py; its
``http_version`` is "2". A failed handler ends its stream with RST_STREAM (or a
500 if nothing was sent); a client's RST_STREAM is a disconnect to the handler;
the server's graceful shutdown sends GOAWAY and lets open streams finish.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Final

try:
    import zttp
except ImportError:  # pragma: no cover - the codec is an optional dependency
    zttp = None  # type: ignore[assignment]

from ..errors import BlazeasgiError
from .conninfo import ConnectionInfo
from .endings import sweep
from .errors import ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR, NO_ERROR, REFUSED_STREAM, ProtocolError
from .h2exchange import H2Exchange
from .h2fields import FieldCache
from .h2flow import UNREAD_STREAMS, hold_credit, window_update
from .h2limits import (
    CODEC_HEADER_LIST,
    GOAWAY_ACK_TIMEOUT,
    GOAWAY_PING,
    GOAWAY_PING_DATA,
    LAST_STREAM_ID,
    MAX_QUIET_BYTES,
    MAX_STREAMS_PER_CONNECTION,
    check_request,
    time_requests,
)
from .h2settings import server_preface
from .requestchecks import NOTED_FIELDS
from .transports import drain_writes, release_drained, unread_bytes

if TYPE_CHECKING:
    from ..config import Config
    from .serverstate import ServerState

logger = logging.getLogger("blazeasgi.error")

#: The codec is installed: HTTP/2 can be served.
AVAILABLE = zttp is not None
#: Why HTTP/2, asked for, cannot be served (uvicorn words a missing extra so too).
CODEC_MISSING = "--http2: HTTP/2 needs zttp, which is not installed (pip install 'blazeasgi[http2]')"


def serves_http2(config: Config) -> bool:
    """Whether a server with ``config`` serves HTTP/2: by default (``http2`` None)
    when the codec is installed. Raises BlazeasgiError (CODEC_MISSING) when HTTP/2
    was asked for (``--http2``, BLAZEASGI_HTTP2=1, ``Config(http2=True)``) and
    the codec is not installed: serving HTTP/1.1 instead would hide that."""
    if config.http2 is None:
        return AVAILABLE
    if config.http2 and not AVAILABLE:
        raise BlazeasgiError(CODEC_MISSING)
    return config.http2


_METHODS: Final = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")
}


def take_over(state: ServerState, info: ConnectionInfo, transport: asyncio.Transport, data: bytes) -> None:
    """Serve HTTP/2 on ``transport`` from here on; ``data``: the bytes read so far."""
    HTTP2Connection(state, info, transport).start(data)


class HTTP2Connection(asyncio.Protocol):
    """One HTTP/2 connection: the codec, its streams and the socket."""

    # Set only when it changes (so not in __init__): CPython 3.11 keeps at most 29
    # attributes of an instance in its fast layout, and __init__ sets 29; one more
    # makes every attribute read of the pure-Python build a dict lookup (callgrind,
    # benchmarks.micro native --http2: +1.8k instructions a request).
    #: When the stream budget's first GOAWAY went (0: not yet; h2limits).
    _goaway_warned_at: float = 0.0

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
        #: The streams' unread body is over _unread_limit: not reading (see _on_data).
        self._body_paused = False
        #: The transport is reading (see _set_reading).
        self.reading = True
        #: The GOAWAY that refuses new streams went (see announce_shutdown).
        self._goaway_sent = False
        self._peer_goaway = False
        self._last_stream = 0
        self._streams_left = MAX_STREAMS_PER_CONNECTION
        self._max_target = self.config.max_target_size
        self._max_headers = self.config.max_header_count
        self._max_body = self.config.max_body_size or (1 << 62)
        max_head = self.config.max_head_size
        self.max_field_bytes = max_head if max_head < CODEC_HEADER_LIST else 0
        self._read_high = self.config.read_high_water
        self._unread_limit = UNREAD_STREAMS * self._read_high
        #: DATA was parsed since the last flush: the codec may have queued stream
        #: WINDOW_UPDATEs, which the streams hold until read (h2flow).
        self._credit_queued = False
        #: Bytes read since the codec last reported an event (MAX_QUIET_BYTES).
        self._quiet_bytes = 0
        self.field_cache = FieldCache()
        # Timeouts, as HTTPConnection keeps them (see connection.py and Server._on_tick):
        # an HTTP/2 connection with no open stream is idle; requests are timed per
        # stream (h2limits.time_requests).
        self._idle_since = state.clock
        self._head_since = 0.0

    def start(self, data: bytes) -> None:
        self.transport.set_protocol(self)
        self.state.connections.add(self)
        self.codec.initiate_connection()
        # The server's preface leaves first (extended CONNECT announced if served).
        self.transport.write(server_preface(self.codec.data_to_send(), self.config.ws))
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
                if self._read_events(started):
                    self._quiet_bytes = 0
                else:
                    self._quiet_bytes += len(data)
                    if self._quiet_bytes > MAX_QUIET_BYTES:
                        self._calm()
                        return
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
        if (self._peer_goaway or self._goaway_sent) and not self.streams:
            # The client is going away with nothing in flight (or its last stream
            # ended before its GOAWAY arrived), or the server's last GOAWAY went
            # and no stream it admits is open: nothing more will come.
            self.close()
            return
        self.flush_now()

    def _read_events(self, started: list[H2Exchange]) -> int:
        """Act on the codec's events; returns how many there were."""
        codec = self.codec
        streams = self.streams
        Request, Data, EndOfMessage = zttp.Request, zttp.Data, zttp.EndOfMessage
        events = -1
        while True:
            event = codec.next_event()
            events += 1
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
                return events
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
            elif kind is zttp.Ping:
                if self._goaway_warned_at and event.ack and event.data == GOAWAY_PING_DATA:  # type: ignore[union-attr]
                    # The client read the first GOAWAY: the streams it opened
                    # before have all arrived (h2limits).
                    self.announce_shutdown()
            elif event is zttp.CONNECTION_CLOSED:
                return events
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
        else:
            ex.body_since = self.state.clock
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
        if stream_id == LAST_STREAM_ID:  # served, and the last it can open
            self.announce_shutdown()
        elif self._streams_left == 0:  # the stream budget (h2limits): time to reconnect
            self._warn_goaway()
        target = ex.target
        if (
            target[:1] == b"/"
            and len(target) <= self._max_target
            and len(headers) <= self._max_headers
            and event.protocol is None
            and not self.max_field_bytes
        ):
            return ex  # (CONNECT has no :path: zttp refuses it, or it has a :protocol)
        error = check_request(self, ex, event)
        if error is not None:
            ex.answer_error(error)
            if not ex.body_complete:
                ex.reset_stream(NO_ERROR)
            self._forget(ex)
            return None
        return ex

    def _on_data(self, ex: H2Exchange, data: bytes) -> None:
        self._credit_queued = True
        if ex.body_error is not None:
            return  # refused (fail_body): dropped, and its window stays shut
        ex.feed_body(data)
        ex.body_since = self.state.clock
        if ex.body_received > self._max_body:
            ex.fail_body(ProtocolError(413, "Content Too Large"))
        elif ex.body_received > ex.credit_given:
            # More than the window this stream was given (h2flow; the codec's is larger).
            ex.body_error = ProtocolError(400, "Flow-control window exceeded")
            ex.reset_stream(FLOW_CONTROL_ERROR)
        elif ex.buffered > self._read_high and not self._body_paused and self._unread() > self._unread_limit:
            # Every stream holds at most a window; this bounds their sum.
            self._body_paused = True
            self._set_reading()

    def _unread(self) -> int:
        return sum(ex.buffered for ex in self.streams.values())

    def body_consumed(self, ex: H2Exchange) -> None:
        """``ex``'s handler read all its buffered body: pass on the credit its stream
        holds (h2flow), and resume reading if the connection had stopped."""
        credit = ex.held_credit
        if credit:
            ex.held_credit = 0
            if not ex.body_complete and not ex.reset and not self.closed and ex.body_error is None:
                ex.credit_given += credit
                self.transport.write(window_update(ex.stream_id, credit))
        if self._body_paused:
            self._check_unread()

    def _check_unread(self) -> None:
        if self._unread() <= self._unread_limit:
            self._body_paused = False
            self._set_reading()

    def _set_reading(self) -> None:
        """Read while no stream's body is backed up and the peer takes our writes.

        The second half is the guard against control-frame floods: the codec
        answers every PING and SETTINGS itself, so a client that sends them without
        reading the answers would otherwise grow our write buffer without bound.
        """
        reading = not self._body_paused and not self.write_paused
        if reading != self.reading and not self.closed:
            self.reading = reading
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
        if self._body_paused:
            self._check_unread()

    def _dispatch(self, ex: H2Exchange) -> None:
        ex.dispatched = True
        if self.state.access_log:
            ex._started_at = perf_counter()
        try:
            pending = self.state.dispatch(ex)
        except Exception as exc:
            if isinstance(exc, ProtocolError) and not ex.response_started:
                # The interface refused the request before its handler: a :path
                # it cannot decode (not ASCII: llhttp refuses that in an HTTP/1.1
                # target, zttp passes it on). Its answer, not a handler's failure.
                ex.answer_error(exc)
                self.stream_done(ex, None)
            else:
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
            ex.log_access()
        if not ex.body_complete and not ex.reset:
            # Answered before the request body ended: the client may stop sending
            # (RFC 9113 §8.1).
            ex.reset_stream(NO_ERROR)
        self.streams.pop(ex.stream_id, None)
        if self._body_paused:
            self._check_unread()
        if not self.streams:
            self._idle_since = self.state.clock
            if self.closed:
                self.state.connections.discard(self)
            elif self._goaway_sent or self._peer_goaway:
                self.close()
                return
        self.flush()

    # -- writing -------------------------------------------------------------------------
    def flush(self) -> None:
        """Send what the codec has queued, unless data_received will at its end."""
        if not self.receiving:
            self.flush_now()

    def flush_now(self) -> None:
        data = self.codec.data_to_send()
        if data and not self.closed:
            if self._credit_queued:
                self._credit_queued = False
                data = hold_credit(self.streams, data)
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
        connection closes once its open streams end. (Also the second GOAWAY of
        the stream budget, and the one after the last stream id.)"""
        if self._goaway_sent or self.closed:
            return
        self._goaway_sent = True
        self.codec.close(NO_ERROR, self._last_stream)
        self.flush()

    def _warn_goaway(self) -> None:
        """The first of the stream budget's two GOAWAYs (h2limits): no stream is
        refused yet; the PING after it times the second."""
        if self._goaway_sent or self.closed:
            return
        self._goaway_warned_at = self.state.clock
        self.codec.close(NO_ERROR, LAST_STREAM_ID)
        self.flush_now()  # (what the codec queued goes first)
        self.transport.write(GOAWAY_PING)

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

    def timeout_head(self) -> None:  # pragma: no cover - a connection's head is not timed
        self.close()

    def sweep(self, now: float, keep_alive: float, head_timeout: float) -> None:
        """The server's once-a-second look. A request whose head or body stopped
        coming times out as an HTTP/1.1 head does; a connection with no open stream
        closes when idle past the keep-alive timeout (endings.sweep)."""
        if self.streams:
            time_requests(self, now, head_timeout)
        if (
            self._goaway_warned_at
            and not self._goaway_sent
            and now - self._goaway_warned_at >= GOAWAY_ACK_TIMEOUT
        ):
            # The client did not answer the PING after the first GOAWAY.
            self.announce_shutdown()
            if not self.streams:
                self.close()
                return
        sweep(self, now, keep_alive, head_timeout)

    def _calm(self) -> None:
        """A flood (MAX_QUIET_BYTES): GOAWAY ENHANCE_YOUR_CALM, and close."""
        logger.debug("HTTP/2 flood from %s: closing", self.info.client)
        if not self._goaway_sent:
            self._goaway_sent = True
            self.codec.close(ENHANCE_YOUR_CALM, self._last_stream)
        self.close()
