"""The connection loop: one asyncio Protocol per connection, httptools underneath.

Per connection the engine keeps, in order:
  * ``_pipeline``: parsed requests not yet started (pipelining: answered in order),
  * ``_current``: the request whose handler is running (at most one),
  * ``_reading``: the request whose body the parser is currently delivering.
All requests parsed from one ``data_received`` are dispatched after the parser
returns, so a body that arrived with its head is already buffered when the handler
starts (no suspension to read it), and pipelined responses leave in one write.

Timeouts cost nothing per request: the server sweeps every connection once a second
and compares the timestamps kept here (``_idle_since``, ``_head_since``) to its clock.
A stamp is 0 while not timing. The data path stores the server's clock, which only
the sweep advances: a positive stamp says the connection went idle (or a head
began) *after* that time, possibly long after when a loop pass took seconds under
overload. The sweep rewrites each positive stamp to minus its own time (it happened
by then at the latest) and times the connection from there: a timeout fires between
one and two ticks after it is due, never before, however stale the clock was
(server.Server._on_tick).
"""

from __future__ import annotations

import array
import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

import httptools

try:  # FIONREAD, for HTTPConnection.unread_bytes
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ..logs import log_access
from .errors import AppError, ClientDisconnected, ProtocolError
from .exchange import ConnectionInfo, Exchange
from .framing import (
    _VALID_HOSTS,
    _as_protocol_error,
    _check_codings,
    _check_host,
    _non_origin_target,
    _rare_method,
    _UpgradeBody,
)
from .http11 import error_response

if TYPE_CHECKING:
    from .server import ServerState

logger = logging.getLogger("blazeasgi.error")
access_logger = logging.getLogger("blazeasgi.access")

#: Methods named without decoding. CONNECT is left out: its target needs a check
#: (authority-form only) that _rare_method makes off the common path.
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")}
_OWS = frozenset(b" \t")
#: Fields no request needs on the hot path but an interface may look for (TE for
#: trailers, proxy headers): seeing one sets Exchange.noted_fields so the
#: interface scans the headers only then.
_NOTED_FIELDS = frozenset(
    {b"te", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"forwarded"}
)
_SPECIAL_HEADERS = _NOTED_FIELDS | frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"expect", b"connection"}
)
#: What a read may end with when it ends inside a method (see _note_line).
_METHOD_PREFIX = re.compile(rb"[A-Z-]+ ?\Z")
#: Parsed-but-unstarted pipelined requests before reading pauses.
_PIPELINE_HIGH_WATER = 64
#: The most a transport hands to data_received at once (uvloop reads 256 KiB).
_READ_SIZE = 1 << 18


class HTTPConnection:
    """An asyncio protocol (it has every method of ``asyncio.Protocol``) for one connection.

    Not a subclass of it: mypyc compiles a subclass of a Python class as a plain
    Python class (attributes in a dict, looked up by name); this way it is a native
    class (measured with benchmarks.callgrind: about 450 instructions less per request).
    """

    __slots__ = (
        "_access_log",
        "_batch",
        "_chunked_received",
        "_connection_header",
        "_content_length",
        "_current",
        "_detached",
        "_dispatching",
        "_drain_waiters",
        "_expect_continue",
        "_feed",
        "_head_budget",
        "_head_guard",
        "_head_since",
        "_headers",
        "_host_count",
        "_idle_since",
        "_leftover",
        "_line",
        "_max_body",
        "_max_head",
        "_max_headers",
        "_max_target",
        "_noted_fields",
        "_parser",
        "_pending_error",
        "_pending_head",
        "_pipeline",
        "_read_closed",
        "_read_paused",
        "_reading",
        "_since_head",
        "_started_at",
        "_transfer_encoding",
        "_unusual",
        "_url",
        "closed",
        "config",
        "info",
        "loop",
        "peer_eof",
        "state",
        "transport",
        "write_paused",
    )

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self.loop = state.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        #: What interfaces may know of this connection; set in connection_made.
        self.info: ConnectionInfo = None  # type: ignore[assignment]
        self.closed = False
        self.peer_eof = False
        self.write_paused = False
        self._parser = httptools.HttpRequestParser(self)
        #: Where received bytes go: the parser, or an upgrade request's body (_UpgradeBody).
        self._feed: Callable[[bytes], None] = self._parser.feed_data
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        config = self.config
        self._max_head = config.max_head_size
        self._max_target = config.max_target_size
        self._max_headers = config.max_header_count
        # 0 means unlimited: compare against a bound no request can reach.
        self._max_body = config.max_body_size or (1 << 62)
        self._access_log = state.access_log
        self._head_budget = self._max_head
        self._since_head = 0
        self._head_guard = self._max_head + _READ_SIZE
        self._host_count = 0
        self._content_length = -1
        self._chunked_received = 0
        self._expect_continue = False
        self._connection_header = False
        #: The request's Transfer-Encoding field lines, joined as one list (RFC 9110 §5.3).
        self._transfer_encoding: bytes | None = None
        #: Set by a header that needs on_headers_complete's slow path (Connection, Expect).
        self._unusual = False
        self._noted_fields = False
        self._pipeline: deque[Exchange] = deque()
        self._current: Exchange | None = None
        self._reading: Exchange | None = None
        self._read_closed = False
        self._read_paused = False
        self._pending_error: ProtocolError | None = None
        #: The request _pending_error answers is a HEAD.
        self._pending_head = False
        self._batch: list[bytes] | None = None
        self._detached = False
        self._leftover = b""
        #: The start of a request line a read ended in (see _note_line), else None.
        self._line: bytes | None = None
        self._dispatching = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._idle_since = 0.0
        self._head_since = 0.0
        self._started_at = 0.0

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        state = self.state
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        tls = state.tls
        self.info = ConnectionInfo(
            (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None,
            (str(sock[0]), int(sock[1])) if isinstance(sock, tuple) else None,
            "http" if tls is None else "https",
            # The loop finished the TLS handshake before calling us.
            None if tls is None else tls.connection_info(transport.get_extra_info("ssl_object")),
            state,
        )
        self.transport.set_write_buffer_limits(high=self.config.write_high_water)
        limit = self.config.max_connections
        # Not refused while draining: the listener is closed by then, so this one
        # was accepted before; its request is served, with Connection: close.
        if limit and len(state.connections) + len(state.websockets) >= limit:
            self.transport.write(error_response(503, "Service Unavailable"))
            self.closed = self.info.closed = True
            transport.close()
            return
        state.connections.add(self)
        self._idle_since = state.clock

    def connection_lost(self, exc: Exception | None) -> None:
        if self._detached:
            return
        self.closed = self.info.closed = True
        if self._current is None:
            # Else the handler still runs: the server keeps counting this
            # connection (graceful shutdown waits for it) until it ends.
            self.state.connections.discard(self)
        for ex in (self._current, self._reading):
            if ex is not None:
                ex._lost()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    def data_received(self, data: bytes) -> None:
        if self._read_closed:
            return
        if self._idle_since:  # the first bytes after idling: a request head starts
            self._idle_since = 0.0
            self._head_since = self.state.clock
        # Bytes since the last complete head, less body bytes (see on_body): a
        # cheap bound on what httptools may be buffering for an unfinished head.
        self._since_head += len(data)
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
                self._protocol_error(_as_protocol_error(exc))
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
            elif (
                ex.response_complete
                and ex.keep_alive
                and ex.body_complete
                and self._pending_error is None
                and not self._read_closed
                and not self._read_paused
            ):
                self._current = None
                self._idle_since = self.state.clock
            else:
                self._finish(ex)
                self._run_next()

    def _note_line(self, data: bytes) -> None:
        """The read ended inside a line, outside any body (cold): if that is a request
        line, keep what came of it so the next read checks it whole."""
        if self._headers:
            return  # in the header section
        tail = data[data.rfind(b"\n") + 1 :]
        if self._url:  # past the start of the target: in the request line or a header line
            if not tail.startswith(self._parser.get_method() + b" "):
                return  # (a header line cannot start so: llhttp rejects SP in a name)
        elif _METHOD_PREFIX.match(tail) is None:
            return  # the end of a body, not the start of a method
        self._line = tail

    def _feed_checked(self, data: bytes) -> None:
        """Feed ``data``, rejecting a request line with more than one SP between its
        parts (cold: the read holds two SP in a row or continues a request line).

        Lines without a SP pair go to the parser in bulk; the parser's state at the
        start of each other line tells a request line (no target yet, no body)
        from a header, body or trailer line. A Content-Length body may end inside a
        line: its last bytes are fed first, so the next request starts a piece.
        """
        n = len(data)
        pos = 0
        try:
            while pos < n:
                line = self._line
                if line is None:
                    pair = data.find(b"  ", pos)
                    start = data.rfind(b"\n", pos, pair if pair >= 0 else n) + 1
                    if start > pos:  # up to the next line holding a pair, or the last one
                        self._feed(data[pos:start])
                        pos = start
                        continue
                    reading = self._reading
                    if reading is not None and self._content_length > 0:
                        left = self._content_length - reading.body_received
                        if 0 < left < n - pos:
                            self._feed(data[pos : pos + left])
                            pos += left
                            continue
                    if reading is not None or self._url:  # a body, trailer or header line
                        end = data.find(b"\n", pos) + 1 or n
                        self._feed(data[pos:end])
                        pos = end
                        continue
                    line = b""
                end = data.find(b"\n", pos) + 1 or n
                text = line + data[pos:end]
                if b"  " in text:
                    raise ProtocolError(400, "More than one SP in the request line")
                self._line = None if text[-1] == 10 else text
                self._feed(data[pos:end])
                pos = end
        except httptools.HttpParserUpgrade as exc:  # its offset is into the piece fed
            raise httptools.HttpParserUpgrade(pos + int(exc.args[0])) from None

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
            body = _UpgradeBody.for_request(self, last)
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
                    self._protocol_error(_as_protocol_error(exc))
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
        self._flush_batch()
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\n" + header_block + b"\r\n")
        self._detached = True
        self.closed = self.info.closed = True  # for HTTP purposes: no more reads, writes or timeouts
        self.state.connections.discard(self)
        leftover, self._leftover = self._leftover, b""
        return self.transport, leftover

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters = self._drain_waiters
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        waiters.clear()

    def eof_received(self) -> bool | None:
        # The client sent FIN. Requests it completed before are still answered
        # (the write side stays open for a half-closing client), but a handler
        # waiting for more body or for the disconnect learns it now, as under
        # uvicorn: ASGI receive() gives http.disconnect.
        self._read_closed = True
        self.peer_eof = True
        for ex in (self._current, self._reading):
            if ex is not None:
                ex._lost()
        if self._current is None and not self._pipeline:
            self.close()
        # TLS has no half-close: the loop shuts the connection down whatever we
        # answer, and logs a warning for every client that closes if we say True.
        return self.info.tls is None

    # -- httptools callbacks (hot path) ----------------------------------------------
    def on_url(self, url: bytes) -> None:
        url = self._url = self._url + url
        if len(url) > self._max_target:
            raise ProtocolError(414, "URI Too Long")
        if 35 in url:  # "#": RFC 9112 §3.2 has no fragment in a target (llhttp takes it)
            raise ProtocolError(400, "Fragment in request target")

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if value and value[-1] in _OWS:  # llhttp keeps trailing OWS; RFC 9110 §5.5 drops it
            value = value.rstrip(b" \t")
        self._headers.append((name, value))
        self._head_budget -= len(name) + len(value) + 4
        if name in _SPECIAL_HEADERS or self._head_budget < 0:
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
        if keep_alive and self._host_count == 1 and not unusual:
            # llhttp keeps alive by default only for HTTP/1.1 (it rejects 1.2+), so
            # with no Connection header this is 1.1, without get_http_version()
            # (0.3 us: it formats a str) or any of the checks below.
            version = "1.1"
        else:
            version = self._check_head(keep_alive)
        self._host_count = 0
        target = self._url
        headers = self._headers
        if target[0] != 47 or len(target) > self._max_target or len(headers) > self._max_headers:
            target = self._check_target(target, headers)
        raw_method = parser.get_method()
        ex = Exchange(
            self,
            _METHODS.get(raw_method) or _rare_method(raw_method, target),
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
        self._head_since = 0.0
        self._reading = ex
        pipeline = self._pipeline
        pipeline.append(ex)
        if len(pipeline) > _PIPELINE_HIGH_WATER and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()

    def _check_head(self, keep_alive: bool) -> str:
        """The version and Host rules, for heads off the common path (cold)."""
        if keep_alive and not self._connection_header:
            version = "1.1"  # as in on_headers_complete
        else:
            version = self._parser.get_http_version()
            self._connection_header = False
        if version == "1.1":
            if self._host_count != 1:
                raise ProtocolError(400, "Missing or repeated Host header")
        elif version == "1.0":
            if self._host_count > 1:
                raise ProtocolError(400, "Repeated Host header")
        else:
            raise ProtocolError(505, "HTTP Version Not Supported")
        transfer_encoding = self._transfer_encoding
        if transfer_encoding is not None:
            self._transfer_encoding = None
            if version == "1.0":
                # RFC 9112 §6.1: faulty framing; the connection closes after the 400.
                raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
            _check_codings(transfer_encoding)
        return version

    def _check_target(self, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
        """Size limits and non-origin forms of the request target (cold)."""
        if len(target) > self._max_target:
            raise ProtocolError(414, "URI Too Long")
        if len(headers) > self._max_headers:
            raise ProtocolError(431, "Too many header fields")
        if target[0] != 47:  # not "/": absolute-form, "*" or authority-form
            method = self._parser.get_method().decode("ascii", "replace")
            target, authority = _non_origin_target(method, target)
            if authority is not None:
                _check_host(authority)
                # RFC 9112 §3.2.2: the target's authority wins over any Host field.
                headers[:] = [(k, authority if k == b"host" else v) for k, v in headers]
        return target

    def on_body(self, body: bytes) -> None:
        ex = self._reading
        assert ex is not None
        # Body bytes, plus what framing a legitimate chunk needs (size line and
        # CRLFs), are not head bytes; long chunk extensions still count.
        self._since_head -= len(body) + 24
        ex._feed(body)
        if ex._buffered > self.config.read_high_water and not self._read_paused:
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
        if ex._body_waiter is not None:
            ex._end()
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

    # -- headers that steer framing (cold path) -------------------------------------
    def _special_header(self, name: bytes, value: bytes) -> None:
        if self._head_budget < 0:
            raise ProtocolError(431, "Request Header Fields Too Large")
        if name == b"host":
            _check_host(value)
            self._host_count += 1
        elif name == b"content-length":
            # llhttp has already rejected non-digits, signs and conflicting repeats.
            self._content_length = int(value)
            if self._content_length > self._max_body:
                raise ProtocolError(413, "Content Too Large")
        elif name == b"transfer-encoding":
            # Judged in _check_head, as one list with any other TE field lines.
            previous = self._transfer_encoding
            self._transfer_encoding = value if previous is None else previous + b"," + value
            self._unusual = True
        elif name == b"connection":
            self._connection_header = self._unusual = True
        elif name in _NOTED_FIELDS:
            self._noted_fields = self._unusual = True
        elif name == b"expect":
            if value.strip().lower() == b"100-continue":
                self._expect_continue = self._unusual = True
            else:
                raise ProtocolError(417, "Expectation Failed")

    # -- dispatch ------------------------------------------------------------------
    def _run_next(self) -> None:
        """Run queued requests in order until one suspends or none are left."""
        pipeline = self._pipeline
        batched = len(pipeline) > 1
        if batched:
            self._batch = []
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
                elif ex.response_complete and ex.keep_alive and ex.body_complete and not self._access_log:
                    self._current = None  # the common case of _finish, inlined
                else:
                    self._finish(ex)
        finally:
            self._dispatching = False
            if batched:
                self._flush_batch()
        if self._current is None and not pipeline:
            if self._pending_error is not None or self._read_closed or self._read_paused:
                self._pipeline_drained()
            else:
                self._idle_since = self.state.clock

    def _pipeline_drained(self) -> None:
        if self._pending_error is not None:
            self._send_error(self._pending_error, self._pending_head)
        elif self._read_closed:
            if not self.closed and self._reading is None:
                self.close()
        elif self._read_paused and self._reading is None:
            self._read_paused = False
            self.transport.resume_reading()
        if not self.closed:
            self._idle_since = self.state.clock

    def _on_handler_done(self, result: Any, exc: BaseException | None) -> None:
        ex = self._current
        if ex is None:  # pragma: no cover - defensive: the connection was reset
            return
        if (
            exc is None
            and ex.response_complete
            and ex.keep_alive
            and ex.body_complete
            and not self._access_log
            and not self.closed
        ):
            # The common case of _finish, inlined as in data_received.
            self._current = None
            if self._dispatching:
                return
            if self._pipeline or self._pending_error is not None or self._read_closed or self._read_paused:
                self._run_next()
            else:
                self._idle_since = self.state.clock
            return
        if exc is not None:
            self._handler_failed(ex, exc)
        self._finish(ex)
        if self.closed:
            self.state.connections.discard(self)
        elif not self._dispatching:
            self._run_next()

    def _handler_failed(self, ex: Exchange, exc: BaseException) -> None:
        if isinstance(exc, ClientDisconnected) and (self.closed or ex.body_error is not None):
            pass  # the client left or broke its body: not the app's fault, no log
        elif isinstance(exc, asyncio.CancelledError):
            logger.error("Handler for %s %s was cancelled", ex.method, _show(ex.target))
        else:
            logger.error("Exception in handler for %s %s", ex.method, _show(ex.target), exc_info=exc)
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
                    logger.error(
                        "Handler for %s %s returned without a response",
                        ex.method,
                        _show(ex.target),
                    )
                    ex.respond(500, _TEXT_PLAIN, b"Internal Server Error", close=True)
            else:
                logger.error(
                    "Handler for %s %s returned before the response body ended",
                    ex.method,
                    _show(ex.target),
                )
                ex.keep_alive = False
        if self._access_log:
            self._log_access(ex)
        if not ex.keep_alive:
            self.close()
            return
        if not ex.body_complete:
            # An unread body must not be parsed as the next request: skip it, or
            # close (Exchange._unread_closes decided which when it answered).
            if ex._unread_closes():
                self.close()
                return
            ex.discard_body = True
            ex._chunks = None
            ex._buffered = 0
            self._body_consumed()

    # -- writing ----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        batch = self._batch
        if batch is not None:
            batch.append(data)
            if len(batch) > 64:
                self._flush_batch()
                self._batch = []
            return
        if not self.closed:
            self.transport.write(data)

    def _write_parts(self, parts: tuple[bytes, ...]) -> None:
        """Write several buffers without joining them first (large body chunks)."""
        batch = self._batch
        if batch is not None:
            batch.extend(parts)
            return
        if not self.closed:
            transport = self.transport
            if transport.is_closing():
                # Failed at the transport, connection_lost not delivered yet. asyncio's
                # writelines (3.12, 3.13) would register a writer on a socket that is
                # about to be closed, and the next connection given its fd is never read.
                return
            transport.writelines(parts)
            if not self.write_paused and transport.get_write_buffer_size() > self.config.write_high_water:
                _pace(transport)

    def _flush_batch(self) -> None:
        batch = self._batch
        self._batch = None
        if batch and not self.closed:
            self.transport.write(b"".join(batch))

    async def drain(self) -> None:
        if self.closed:
            raise ClientDisconnected("client disconnected")
        if not self.write_paused:
            return
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter
        if self.closed:
            raise ClientDisconnected("client disconnected")

    def abort_after_write(self) -> None:
        """The response is broken (e.g. wrong length): close once flushed."""
        self._read_closed = True

    def _body_consumed(self) -> None:
        if self._read_paused and len(self._pipeline) <= _PIPELINE_HIGH_WATER:
            self._read_paused = False
            if not self.closed:
                self.transport.resume_reading()

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
            current._lost()
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
        self.close()

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
        if fcntl is None or self.transport is None:  # pragma: no cover - Windows
            return 0
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return 0
        count = array.array("i", [0])
        try:
            fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
        except (OSError, ValueError):  # closed meanwhile
            return 0
        return count[0]

    def close(self) -> None:
        """Close once everything written so far (batched responses too) is sent."""
        self._read_closed = True
        if not self.closed:
            if self._batch:
                self._flush_batch()
            self.closed = self.info.closed = True
            self.transport.close()

    def _log_access(self, ex: Exchange) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        # perf_counter, not the loop's clock: uvloop's time() is cached per loop
        # iteration (a handler answered inline would last 0 ms) and asyncio's is a
        # Python-level call to the same monotonic clock.
        duration_ms = (perf_counter() - self._started_at) * 1000.0
        # A HEAD's bytes_sent counts the body it would have had (respond sets it).
        body_bytes = 0 if ex._no_body else ex.bytes_sent
        log_access(self.config.access_log_format, self.info.client, ex, body_bytes, duration_ms)


_TEXT_PLAIN = b"content-type: text/plain; charset=utf-8\r\n"


def _pace(transport: asyncio.Transport) -> None:
    """Apply flow control that ``writelines`` left out: pause the protocol.

    asyncio's socket transport on 3.12.0-3.12.8 and 3.13.0-3.13.1 buffers a
    ``writelines`` without calling ``pause_writing`` (CPython gh-127655): a
    stalled reader then grew the server by the whole streamed body. The transport's
    own check pauses the protocol and resumes it once the buffer drains, exactly
    as after ``write``. uvloop's and the TLS transport's writelines pace themselves.
    """
    maybe_pause = getattr(transport, "_maybe_pause_protocol", None)
    if maybe_pause is not None:
        maybe_pause()


def _show(target: bytes) -> str:
    return target.decode("latin-1")
