"""The HTTP/2 connection's fields and its socket side: what goes out (the bytes
the codec queued, the transport's flow control, the drain, reading paused and
resumed), and how the connection ends (GOAWAY, the flood guard, the client's EOF
or loss, closing, timeouts and the sweep). ``HTTP2Connection`` (http2.py) builds on
it with the streams: the codec's events, each request's Exchange, its body and its
end. As for HTTP/1.1 (connstate.py), every field is the connection's own in both.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

try:
    import zttp
except ImportError:  # pragma: no cover - the codec is an optional dependency
    zttp = None  # type: ignore[assignment]

from .conninfo import ConnectionInfo
from .endings import sweep
from .errors import ENHANCE_YOUR_CALM, NO_ERROR
from .h2fields import FieldCache
from .h2flow import UNREAD_STREAMS, hold_credit
from .h2limits import (
    CODEC_HEADER_LIST,
    GOAWAY_ACK_TIMEOUT,
    GOAWAY_PING,
    LAST_STREAM_ID,
    MAX_STREAMS_PER_CONNECTION,
    time_requests,
)
from .transports import drain_writes, linger, release_drained, unread_bytes

if TYPE_CHECKING:
    from .h2exchange import H2Exchange
    from .serverstate import ServerState

logger = logging.getLogger("blazeasgi.error")


class H2Socket(asyncio.Protocol):
    """One HTTP/2 connection's fields, writes and ending (HTTP2Connection is the rest)."""

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
        self.idle_since = state.clock
        self.head_since = 0.0

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

    # -- closing ---------------------------------------------------------------------------
    def eof_received(self) -> bool | None:
        if self.closed:  # lingering (close): the client's FIN ends it
            return False
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
        # The client may still send (a WINDOW_UPDATE, its SETTINGS ACK, a stream
        # it opened before our GOAWAY reached it): a plain close would reset the
        # connection and drop what our kernel has not sent yet of the last responses.
        linger(self.transport, self.loop)

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
