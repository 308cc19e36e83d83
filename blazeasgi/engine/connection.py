"""The connection loop: one asyncio Protocol per connection, httptools underneath.

Per connection the engine keeps, in order:
  * ``_pipeline``: parsed requests not yet started (pipelining: answered in order),
  * ``_current``: the request whose handler is running (at most one),
  * ``_reading``: the request whose body the parser is currently delivering.
All requests parsed from one ``data_received`` are dispatched after the parser
returns, so a body that arrived with its head is already buffered when the handler
starts (no suspension to read it), and pipelined responses leave in one write.

This module is the hot path: what every request runs through. The connection's
writes for its exchanges (connwrites.py) and the unusual (request heads off the
common path, errors, timeouts, closing, upgrades, the prior-knowledge HTTP/2
preface) live in the layers HTTPConnection builds on, one module each: see
connstate.py.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any, Final

import httptools

from .conninfo import ConnectionInfo, address
from .connstate import PIPELINE_HIGH_WATER
from .errors import ProtocolError
from .exchange import Exchange
from .fieldnames import LAST_LOWERED, LAST_NAMES, LAST_SPECIAL, lowered_name
from .framing import (
    VALID_HOSTS,
    UpgradeBody,
    as_protocol_error,
    rare_method,
)
from .http11 import error_response
from .requestchecks import NOTED_FIELDS, RequestChecks
from .transports import release_drained

# Final: compiled, such a constant is a C static; a plain module name costs a dict
# lookup at every use (~140 instructions; 7 a request in on_header alone).
#: Methods named without decoding. CONNECT is left out: its target needs a check
#: (authority-form only) that rare_method makes off the common path.
_METHODS: Final = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")
}
_SPECIAL_HEADERS: Final = NOTED_FIELDS | frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"expect", b"connection"}
)
#: framing.VALID_HOSTS itself (framing.py adds to it and clears it, never rebinds it).
_VALID_HOSTS: Final = VALID_HOSTS
#: What a lost connection's parser is replaced with (see connection_lost): a parser
#: with no callbacks, fed nothing.
_RELEASED_PARSER: Final = httptools.HttpRequestParser(object())
_RELEASED_FEED: Final = _RELEASED_PARSER.feed_data


class HTTPConnection(RequestChecks):
    __slots__ = ()

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        state = self.state
        listener = self._listener
        if listener is not None and listener.known:
            server = listener.server  # bound to one address: no need to ask
        else:
            server = address(transport.get_extra_info("sockname"))
        tls = state.tls
        self.info = ConnectionInfo(
            address(transport.get_extra_info("peername")),
            server,
            "http" if tls is None else "https",
            # The loop finished the TLS handshake before calling us.
            None if tls is None else tls.connection_info(transport.get_extra_info("ssl_object")),
            state,
        )
        if state.set_write_limit:
            self.transport.set_write_buffer_limits(high=self.config.write_high_water)
        limit = state.max_connections
        # Not refused while draining: the listener is closed by then, so this one
        # was accepted before; its request is served, with Connection: close.
        if limit and len(state.connections) + len(state.websockets) >= limit:
            self.transport.write(error_response(503, "Service Unavailable"))
            self.closed = self.info.closed = True
            transport.close()
            return
        state.connections.add(self)
        self.idle_since = state.clock
        if state.http2 is not None:
            if tls is None:
                # Prior-knowledge h2c: the first bytes decide. data_received's first
                # test (_read_closed) sends them to _sniff_preface, so the check
                # costs a request on a connection that stays HTTP/1.1 nothing.
                self._sniffing = self._read_closed = True
            elif transport.get_extra_info("ssl_object").selected_alpn_protocol() == "h2":
                self._hand_over(state.http2, b"")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._detached:
            return
        self.closed = self.info.closed = True
        current = self._current
        if current is None:
            # Else the handler still runs: the server keeps counting this
            # connection (graceful shutdown waits for it) until it ends.
            self.state.connections.discard(self)
            # The parser holds this connection's callbacks and the connection holds
            # the parser: a cycle, which left every connection to the cyclic GC (a
            # collection every ~60 connections under --close, ~9k instructions a
            # connection in benchmarks.callgrind). Nothing is read from here on, and
            # no handler runs: let go of the parser, and the connection is freed
            # once the transport lets go of it.
            self._read_closed = True
            self._sniffing = False
            self._parser = _RELEASED_PARSER
            self._feed = _RELEASED_FEED
        else:
            current.client_lost()
        reading = self._reading
        if reading is not None and reading is not current:
            reading.client_lost()
        release_drained(self._drain_waiters)

    def data_received(self, data: bytes) -> None:
        if self._read_closed:
            if not self._sniffing:
                return
            sniffed = self._sniff_preface(data)
            if sniffed is None:
                return
            data = sniffed
        if self.idle_since:  # the first bytes after idling: a request head starts
            self.idle_since = 0.0
            self.head_since = self.state.clock
        # Bytes since the last complete head, less body bytes (see on_body): a
        # cheap bound on what httptools may be buffering for an unfinished head.
        self._since_head += len(data)
        # At a message boundary (no body being read, no target seen, no request line
        # begun in an earlier read: see _note_line) the read starts with a request
        # line, whose version _version can read without asking the parser.
        self._fresh = data if self._reading is None and not self._url and self._line is None else None
        try:
            # llhttp lets a run of SP pass between the parts of the request line (RFC
            # 9112 §3 wants one): only a read holding two SP in a row, or continuing
            # a request line, needs a look at its bytes.
            # (find, not "in": bytes.__contains__ tries the needle as an int first and
            # pays for the TypeError, 0.1 us more)
            if self._line is None and data.find(b"  ") < 0:
                self._feed(data)
                if data[-1:] != b"\n" and self._reading is None:
                    self._note_line(data)
            else:
                self._feed_checked(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_upgrade(data, int(exc.args[0]) if exc.args else len(data))
        except httptools.HttpParserError as exc:
            if not self._read_closed:  # bytes after a final request are ignored
                self._protocol_error(as_protocol_error(exc))
                return
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        if self._since_head > self._head_guard:
            # One header field or target that never ends (httptools buffers it):
            # on_header enforces max_head_size per field, this bounds the rest.
            self._protocol_error(ProtocolError(431, "Request Header Fields Too Large"))
            return
        pipeline = self._pipeline
        if pipeline and self._current is None:
            if len(pipeline) > 1 or self._access_log:
                self._run_next()
                return
            # One request, the common case: _run_next without its loop, batch and
            # bookkeeping (measured 0.12 us a request, 3% at 100 connections).
            ex = pipeline.popleft()
            self._current = ex
            try:
                pending = self.state.dispatch(ex)
            except Exception as exc:
                self._handler_failed(ex, exc)
                pending = None
            if pending is not None:
                self.state.runners.run(pending, self._on_handler_done)
            elif self._ended_cleanly(ex):
                self._current = None  # the common case of _finish, inlined
                self._settle()
            else:
                self._finish(ex)
                self._run_next()

    def _on_upgrade(self, data: bytes, offset: int) -> None:
        """The parser stopped at an Upgrade (or CONNECT) request.

        The request is dispatched like any other with ``ex.upgrade`` set; its
        handler either takes the connection with ``switch_protocols`` or answers
        in plain HTTP, after which the connection closes (the client may already
        be speaking the new protocol). Reading pauses until then, and the bytes
        after the head are kept for the new protocol.
        """
        last = self._pipeline[-1] if self._pipeline else self._current
        if last is not None and self._feed == self._parser.feed_data:
            # The request's own body, if any, is framed in HTTP/1.1 before any new
            # protocol starts (RFC 9110 §7.8), and an app declining the upgrade reads
            # it like any other; httptools skipped it: read it now.
            last.keep_alive = False
            value = next((v for k, v in last.headers if k == b"upgrade"), None)
            if value is not None:
                last.upgrade = value.strip().lower()
            body = UpgradeBody.for_request(self, last)
            if body is not None:
                last.body_complete = False
                self._reading = last
                self._feed = body.feed_data
                try:
                    body.feed_data(data[offset:])
                    return  # more to come: reading goes on until the body ends
                except httptools.HttpParserUpgrade as exc:  # ended: the rest is the new protocol's
                    data, offset = data[offset:], int(exc.args[0])
                except httptools.HttpParserError as exc:
                    self._protocol_error(as_protocol_error(exc))
                    return
        self._read_closed = True
        if last is None:
            return
        last.keep_alive = False
        if last.upgrade is not None:
            self._leftover = data[offset:]
            if not self._read_paused:
                self._read_paused = True
                self.transport.pause_reading()

    # -- httptools callbacks (hot path) ----------------------------------------------
    def on_url(self, url: bytes) -> None:
        url = self._url = self._url + url
        if len(url) > self._max_target:
            raise ProtocolError(414, "URI Too Long")
        if 35 in url:  # "#": RFC 9112 §3.2 has no fragment in a target (llhttp takes it)
            raise ProtocolError(400, "Fragment in request target")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        i = len(headers)
        if i < len(LAST_NAMES) and LAST_NAMES[i] == name:
            name = LAST_LOWERED[i]
            special = LAST_SPECIAL[i]
        else:
            name = lowered_name(name, i, _SPECIAL_HEADERS)
            special = name in _SPECIAL_HEADERS
        # llhttp keeps trailing OWS (SP, HTAB); RFC 9110 §5.5 drops it. One int compare
        # lets through every value that cannot end so: compiled, "value[-1] in
        # frozenset" boxed the int and hashed it; pure, the compare is cheaper too.
        if value and value[-1] <= 32:
            value = value.rstrip(b" \t")
        headers.append((name, value))
        self._head_budget -= len(name) + len(value) + 4
        if special or self._head_budget < 0:
            if self._reading is not None:
                # A trailer field of a chunked body: bounded by the budget, but it
                # never steers framing (RFC 9112 §7.1.2); on_message_complete drops it.
                if self._head_budget < 0:
                    raise ProtocolError(431, "Request Header Fields Too Large")
                if name == b"connection":
                    # llhttp acts on it (closes after the message): it cannot be dropped.
                    raise ProtocolError(400, "Connection field in trailer section")
            elif name == b"host" and self._head_budget >= 0 and value in _VALID_HOSTS:
                self._host_count += 1  # every request has one: spare it the call
            else:
                self._special_header(name, value)

    def on_headers_complete(self) -> None:
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        unusual = self._unusual
        raw_method = parser.get_method()
        if keep_alive and self._host_count == 1 and not unusual:
            # llhttp keeps alive by default only for HTTP/1.1 (it rejects 1.2+), so
            # with no Connection header this is 1.1, without get_http_version()
            # (0.3 us: it formats a str) or any of the checks below.
            version = "1.1"
        else:
            version = self._check_head(keep_alive, raw_method)
        self._host_count = 0
        self._fresh = None  # the next head of this read starts elsewhere
        target = self._url
        headers = self._headers
        if target[0] != 47 or len(target) > self._max_target or len(headers) > self._max_headers:
            target = self._check_target(target, headers)
        ex = Exchange(
            self,
            # GET first: a bytes compare, where the dict lookup hashes the new bytes.
            "GET" if raw_method == b"GET" else _METHODS.get(raw_method) or rare_method(raw_method, target),
            target,
            headers,
            version,
            keep_alive,
        )
        if unusual:
            self._unusual = False
            if self._expect_continue:
                self._expect_continue = False
                ex.expect_continue = True
            if self._noted_fields:
                self._noted_fields = False
                ex.noted_fields = True
        self._url = b""
        self._headers = []
        self._head_budget = self._max_head
        self._since_head = 0
        self.head_since = 0.0
        self._reading = ex
        pipeline = self._pipeline
        pipeline.append(ex)
        if len(pipeline) > PIPELINE_HIGH_WATER and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()

    def on_body(self, body: bytes) -> None:
        ex = self._reading
        assert ex is not None
        # Body bytes, plus what framing a legitimate chunk needs (size line and
        # CRLFs), are not head bytes; long chunk extensions still count.
        self._since_head -= len(body) + 24
        ex.feed_body(body)
        if ex.buffered > self.config.read_high_water and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()
        if self._content_length < 0:  # chunked: enforce the limit as it streams
            self._chunked_received += len(body)
            if self._chunked_received > self._max_body:
                raise ProtocolError(413, "Content Too Large")

    def on_message_complete(self) -> None:
        ex = self._reading
        assert ex is not None
        ex.body_complete = True
        if ex.body_waiter is not None:
            ex.end_body()
        self._reading = None
        self._since_head = 0
        if self._headers:  # trailer fields (see on_header): not the next request's
            self._headers = []
            self._head_budget = self._max_head
        if self._content_length != -1:
            self._content_length = -1
        if self._chunked_received:
            self._chunked_received = 0
        if not ex.keep_alive:
            self._read_closed = True

    # -- dispatch ------------------------------------------------------------------
    def _ended_cleanly(self, ex: Exchange) -> bool:
        """Whether ``ex`` (its handler returned) needs no more of ``_finish`` than
        ``_current = None``, which data_received, _run_next and _on_handler_done then
        do inline: response and body complete, kept alive, open, no access line."""
        return (
            ex.response_complete
            and ex.keep_alive
            and ex.body_complete
            and not self._access_log
            and not self.closed
        )

    def _settle(self) -> None:
        """No request is queued or running: the connection is idle from now, unless
        an error is to be sent or reading was closed or paused (_pipeline_drained)."""
        if self._pending_error is None and not self._read_closed and not self._read_paused:
            self.idle_since = self.state.clock
        else:
            self._pipeline_drained()

    def _run_next(self) -> None:
        """Run queued requests in order until one suspends or none are left."""
        pipeline = self._pipeline
        batched = len(pipeline) > 1
        if batched:
            self.batch = []
        self._dispatching = True
        dispatch = self.state.dispatch
        runners = self.state.runners
        try:
            while pipeline and self._current is None and not self.closed:
                ex = pipeline.popleft()
                self._current = ex
                if self._access_log:
                    self._started_at = perf_counter()
                try:
                    pending = dispatch(ex)
                except Exception as exc:
                    self._handler_failed(ex, exc)
                    pending = None
                if pending is not None:
                    runners.run(pending, self._on_handler_done)
                elif self._ended_cleanly(ex):
                    self._current = None  # the common case of _finish, inlined
                else:
                    self._finish(ex)
        finally:
            self._dispatching = False
            if batched:
                self.flush_batch()
        if self._current is None and not pipeline:
            self._settle()

    def _on_handler_done(self, result: Any, exc: BaseException | None) -> None:
        ex = self._current
        if ex is None:  # pragma: no cover - defensive: the connection was reset
            return
        if exc is None and self._ended_cleanly(ex):
            # The common case of _finish, inlined as in data_received.
            self._current = None
            if self._dispatching:
                return
            if self._pipeline:
                self._run_next()
            else:
                self._settle()
            return
        if exc is not None:
            self._handler_failed(ex, exc)
        self._finish(ex)
        if self.closed:
            self.state.connections.discard(self)
        elif not self._dispatching:
            self._run_next()
