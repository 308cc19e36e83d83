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

This module reads: the codec's events, each stream's request and body, its
dispatch and its end. The connection's fields, what it writes and how it ends
(GOAWAY, closing, the sweep) are the base class's, in h2socket.py.
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
from .errors import FLOW_CONTROL_ERROR, NO_ERROR, REFUSED_STREAM, ProtocolError
from .h2exchange import H2Exchange
from .h2flow import window_update
from .h2limits import (
    GOAWAY_PING_DATA,
    LAST_STREAM_ID,
    MAX_QUIET_BYTES,
    check_request,
)
from .h2settings import server_preface
from .h2socket import H2Socket
from .requestchecks import NOTED_FIELDS

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


class HTTP2Connection(H2Socket):
    """One HTTP/2 connection: the codec's events and its streams (its fields, writes
    and ending: h2socket.py)."""

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
        self.idle_since = 0.0
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

    def _on_window_update(self, stream_id: int) -> None:
        if stream_id == 0:
            for ex in self.streams.values():
                ex.window_opened()
        else:
            one = self.streams.get(stream_id)
            if one is not None:
                one.window_opened()

    # -- handlers ------------------------------------------------------------------------
    def _forget(self, ex: H2Exchange) -> None:
        self.streams.pop(ex.stream_id, None)
        if not self.streams:
            self.idle_since = self.state.clock
        if self._body_paused:
            self._check_unread()

    def _dispatch(self, ex: H2Exchange) -> None:
        ex.dispatched = True
        if self.state.access_log:
            ex.started_at = perf_counter()
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
            self.idle_since = self.state.clock
            if self.closed:
                self.state.connections.discard(self)
            elif self._goaway_sent or self._peer_goaway:
                self.close()
                return
        self.flush()
