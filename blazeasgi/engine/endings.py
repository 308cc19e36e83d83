"""How a request or an HTTP/1.1 connection ends off the common path (cold).

A handler that failed or returned without a whole response, a request the client
framed wrong, a request head too slow, an idle connection, the end of the stream
from the client, closing, and the connection leaving HTTP/1.1: to HTTP/2 (ALPN, or
the prior-knowledge preface sniffed from a cleartext connection's first bytes) or,
after a 101, to the protocol an upgrade asked for. Also the access line, written
once a response ends. The layers of the connection: see connstate.py.

Timeouts cost nothing per request: the server sweeps every connection once a second
(``sweep``) and compares the timestamps the connection keeps (``idle_since``,
``head_since``) to its clock. A stamp is 0 while not timing. The data path stores
the server's clock, which only the sweep advances: a positive stamp says the
connection went idle (or a head began) *after* that time, possibly long after when a
loop pass took seconds under overload. The sweep rewrites each positive stamp to
minus its own time (it happened by then at the latest) and times the connection from
there: a timeout fires between one and two ticks after it is due, never before,
however stale the clock was (server.Server._on_tick).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import perf_counter
from typing import Protocol

from ..logs import log_access
from .connwrites import ConnectionWrites
from .errors import AppError, ProtocolError, log_failure, log_unfinished
from .exchange import Exchange
from .http11 import error_response
from .transports import linger as linger_close
from .transports import unread_bytes

access_logger = logging.getLogger("blazeasgi.access")

_TEXT_PLAIN = b"content-type: text/plain; charset=utf-8\r\n"
#: The client's HTTP/2 connection preface (RFC 9113 §3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class ConnectionEndings(ConnectionWrites):
    __slots__ = ()

    # -- a request ends ---------------------------------------------------------------
    def _pipeline_drained(self) -> None:
        """HTTPConnection._settle's uncommon case: nothing queued or running, and an
        error to send, reading closed (close once the last body is read) or paused."""
        if self._pending_error is not None:
            self._send_error(self._pending_error, self._pending_head)
        elif self._read_closed:
            if not self.closed and self._reading is None:
                self.close()
        elif self._read_paused and self._reading is None:
            self._read_paused = False
            self.transport.resume_reading()
        if not self.closed:
            self.idle_since = self.state.clock

    def _handler_failed(self, ex: Exchange, exc: BaseException) -> None:
        log_failure(ex.method, ex.target, exc, self.closed or ex.body_error is not None)
        if not ex.response_started and not self.closed:
            if ex.body_error is not None:
                ex.response_started = ex.response_complete = True
                ex.status = ex.body_error.status
                self._send_error(ex.body_error, ex.method == "HEAD")
            else:
                ex.respond(500, _TEXT_PLAIN, b"Internal Server Error", close=True)
        else:
            ex.response_complete = True
            ex.keep_alive = False

    def _finish(self, ex: Exchange) -> None:
        self._current = None
        if self._detached:  # the connection now belongs to another protocol
            return
        if not ex.response_complete:
            if not ex.response_started and ex.held is not None and not self.closed:
                head = ex.held  # a head with no body: send it, then close
                ex.start(ex.status, head.block, head.content_length, close=True)
            if not ex.response_started:
                if ex.body_error is not None and not self.closed:
                    ex.response_started = ex.response_complete = True
                    ex.status = ex.body_error.status
                    self._send_error(ex.body_error, ex.method == "HEAD")
                elif not self.closed:
                    log_unfinished(ex.method, ex.target, False)
                    ex.respond(500, _TEXT_PLAIN, b"Internal Server Error", close=True)
            else:
                log_unfinished(ex.method, ex.target, True)
                ex.keep_alive = False
        if self._access_log:
            self._log_access(ex)
        if not ex.keep_alive:
            self.close(linger=not ex.body_complete)  # the client may still be sending it
            return
        if not ex.body_complete:
            # An unread body must not be parsed as the next request: skip it, or
            # close (Exchange.unread_body_closes decided which when it answered).
            if ex.unread_body_closes():
                self.close(linger=True)
                return
            ex.skip_unread_body()
            self.body_consumed()

    def _log_access(self, ex: Exchange) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        # perf_counter, not the loop's clock: uvloop's time() is cached per loop
        # iteration (a handler answered inline would last 0 ms) and asyncio's is a
        # Python-level call to the same monotonic clock.
        duration_ms = (perf_counter() - self._started_at) * 1000.0
        log_access(self.config.access_log_format, self.info.client, ex, ex.body_bytes_sent, duration_ms)

    # -- errors, timeouts, closing -----------------------------------------------------
    def _protocol_error(self, error: ProtocolError) -> None:
        self._read_closed = True
        current = self._current
        if current is None and not self._pipeline:
            self._send_error(error, self._head_in_progress())
            return
        # Earlier requests are answered first. A handler waiting for a body that
        # turned out malformed sees the client as gone, and its request gets this
        # error instead of a 500 if it has not answered yet.
        reading = self._reading
        self._reading = None
        if reading is not None and reading is current:
            current.body_error = error
            current.client_lost()
            return
        if reading is not None and reading in self._pipeline:
            # A queued request's body broke: it and anything after it are dropped.
            while self._pipeline and self._pipeline[-1] is not reading:
                self._pipeline.pop()
            self._pipeline.pop()
            self._pending_head = reading.method == "HEAD"
        else:
            self._pending_head = self._head_in_progress()
        self._pending_error = error
        if current is None:
            self._run_next()

    def _send_error(self, error: ProtocolError, head: bool) -> None:
        """Answer ``error`` and close; ``head``: the request it answers is a HEAD."""
        self._pending_error = None
        if not self.closed:
            self.transport.write(error_response(error.status, error.message, head=head))
        # Bad input may go on arriving after the error (the rest of a malformed
        # head or body): read on, so a reset does not discard the error unread. A
        # head that timed out (408) has a client sending nothing worth waiting for.
        self.close(linger=error.status != 408)

    def _head_in_progress(self) -> bool:
        """Whether the request head being parsed is a HEAD's (for an error answering it).

        Its method is known once its target has started; before that the parser
        still holds the previous request's method.
        """
        return bool(self._url) and self._parser.get_method() == b"HEAD"

    def timeout_head(self) -> None:
        """The request head did not arrive in time (slowloris): 408 and close."""
        self._send_error(ProtocolError(408, "Request Timeout"), self._head_in_progress())

    def is_idle(self) -> bool:
        """No request being read, queued or handled, and no bytes the loop has not read.

        Closing such a connection drops nothing the client sent. Bytes waiting in
        the socket are a request the loop has not reached yet (overload, or a
        client that just sent), not idleness.
        """
        if self._current is not None or self._pipeline or self._reading is not None:
            return False
        return not self.unread_bytes()

    def unread_bytes(self) -> int:
        """Bytes received for this connection that the loop has not read yet (0 if unknown).

        A system call: for the sweep and the shutdown, never per request.
        """
        return unread_bytes(self.transport)

    def sweep(self, now: float, keep_alive: float, head_timeout: float) -> None:
        """The server's once-a-second look (server.Server._on_tick): see sweep()."""
        sweep(self, now, keep_alive, head_timeout)

    def eof_received(self) -> bool | None:
        if self.closed:  # lingering (close): the client's FIN ends it
            return False
        # The client sent FIN. Requests it completed before are still answered
        # (the write side stays open for a half-closing client), but a handler
        # waiting for more body or for the disconnect learns it now, as under
        # uvicorn: ASGI receive() gives http.disconnect.
        self._read_closed = True
        self.peer_eof = True
        for ex in (self._current, self._reading):
            if ex is not None:
                ex.client_lost()
        if self._current is None and not self._pipeline:
            self.close()
        # TLS has no half-close: the loop shuts the connection down whatever we
        # answer, and logs a warning for every client that closes if we say True.
        return self.info.tls is None

    def announce_shutdown(self) -> None:
        """The server drains (HTTP/2 sends GOAWAY here): HTTP/1.1 has nothing to
        announce, its responses carry Connection: close from now on."""

    def close(self, linger: bool = False) -> None:
        """Close once everything written so far (batched responses too) is sent.

        ``linger``: the client may not have finished sending (transports.linger).
        """
        self._read_closed = True
        if not self.closed:
            if self.batch:
                self.flush_batch()
            self.closed = self.info.closed = True
            if linger:
                linger_close(self.transport, self.loop)
            else:
                self.transport.close()

    # -- the connection leaves HTTP/1.1 ----------------------------------------------------
    # For HTTP/2: by ALPN, or by its preface as a cleartext connection's first bytes
    # (prior-knowledge h2c, sniffed from HTTPConnection.data_received); or, after
    # HTTPConnection._on_upgrade, for the protocol a 101 switches to.
    def _sniff_preface(self, data: bytes) -> bytes | None:
        """The first bytes of a cleartext connection (cold: once per connection).

        HTTP/2's connection preface hands the connection to HTTP/2 (RFC 9113 §3.3);
        anything else is HTTP/1.1: returns the bytes to read as such.
        """
        if self._leftover:  # a preface split across reads (rare)
            data = self._leftover + data
            self._leftover = b""
        elif data[:1] != b"P":  # the preface's first byte, and of POST, PUT, PATCH only
            self._sniffing = self._read_closed = False
            return data
        http2 = self.state.http2
        if data.startswith(PREFACE) and http2 is not None:
            self._hand_over(http2, data)
            return None
        if len(data) < 24 and PREFACE.startswith(data):
            self._leftover = data
            if self.idle_since:  # timed as a request head (slowloris)
                self.idle_since = 0.0
                self.head_since = self.state.clock
            return None
        self._sniffing = self._read_closed = False
        return data

    def _hand_over(self, start: Callable[..., None], data: bytes) -> None:
        """From here on the connection is HTTP/2's; this HTTPConnection never touches it."""
        self._detached = True
        self._sniffing = False
        self.closed = self._read_closed = True  # (info goes on, with the HTTP/2 connection)
        self.state.connections.discard(self)
        start(self.state, self.info, self.transport, data)

    def switch_protocols(self, ex: Exchange, header_block: bytes) -> tuple[asyncio.Transport, bytes]:
        """Answer ``ex`` with 101 and hand the connection to another protocol.

        ``header_block`` holds the 101's header lines (validated; Upgrade and
        Connection included). Returns the transport and the bytes the client sent
        after the request head; the caller sets its own protocol on the transport
        and resumes reading. From here on this HTTPConnection never touches it.
        """
        if ex.upgrade is None or ex is not self._current or ex.response_started or not ex.body_complete:
            raise AppError("switch_protocols needs the current, unanswered upgrade request, its body read")
        ex.response_started = ex.response_complete = True
        ex.status = 101
        self.flush_batch()
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\n" + header_block + b"\r\n")
        self._detached = True
        self.closed = self.info.closed = True  # for HTTP purposes: no more reads, writes or timeouts
        self.state.connections.discard(self)
        leftover, self._leftover = self._leftover, b""
        return self.transport, leftover


class Sweepable(Protocol):
    """What the sweep needs of a connection, HTTP/1.1 or HTTP/2."""

    head_since: float
    idle_since: float
    transport: asyncio.Transport

    def unread_bytes(self) -> int: ...
    def is_idle(self) -> bool: ...
    def timeout_head(self) -> None: ...
    def close(self) -> None: ...


def sweep(conn: Sweepable, now: float, keep_alive: float, head_timeout: float) -> None:
    """Close ``conn`` when idle past ``keep_alive``; time out a head begun over
    ``head_timeout`` ago (the stamps are read as the connstate docstring says)."""
    head = conn.head_since
    if head:
        if head > 0:
            conn.head_since = -now
        elif now + head >= head_timeout and not conn.unread_bytes():
            conn.timeout_head()
        return
    idle = conn.idle_since
    if idle > 0:
        conn.idle_since = -now
    elif idle and now + idle >= keep_alive and conn.is_idle():
        if conn.transport.get_write_buffer_size():
            # Still answering (a slow reader): idle from when that ends.
            conn.idle_since = now
        else:
            conn.close()
