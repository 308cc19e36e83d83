"""The state of one HTTP/1.1 connection: its fields, their starting values and
what each means. The connection is one object, split by role over five modules:

    connstate.ConnectionState       the fields (slots) and their starting values
    connwrites.ConnectionWrites     what an Exchange calls on its connection: writes,
                                    the pipelined batch, the drain, body read back
    endings.ConnectionEndings       how a request or the connection ends off the
                                    common path: errors, unusual request endings,
                                    timeouts and the sweep, close, and leaving
                                    HTTP/1.1 (the h2c preface sniff and hand-over
                                    to HTTP/2, the 101 switch)
    requestchecks.RequestChecks     request heads off the common path: the request
                                    line across reads, version, Host, framing fields
    connection.HTTPConnection       the hot path: asyncio.Protocol, the httptools
                                    callbacks and dispatch

each a subclass of the one above it. Every field is the connection's own (``self``)
in all five; only the bottom one, HTTPConnection, is instantiated. A method lookup
costs the same wherever in this chain the method lives (the type attribute cache).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import httptools

if TYPE_CHECKING:
    from .conninfo import ConnectionInfo
    from .errors import ProtocolError
    from .exchange import Exchange
    from .serverstate import ConnectionFactory, ServerState

#: The most a transport hands to data_received at once (uvloop reads 256 KiB).
READ_SIZE = 1 << 18
#: Parsed-but-unstarted pipelined requests before reading pauses.
PIPELINE_HIGH_WATER: Final = 64


class ConnectionState:
    """The fields of one connection; HTTPConnection (connection.py) is its protocol.

    An asyncio protocol by its methods (it has every method of ``asyncio.Protocol``),
    not by subclassing it: mypyc compiles a subclass of a Python class as a plain
    Python class (attributes in a dict, looked up by name); this way the chain is a
    native class (measured with benchmarks.callgrind: about 450 instructions less
    per request).
    """

    __slots__ = (
        "_access_log",
        "_chunked_received",
        "_connection_header",
        "_content_length",
        "_current",
        "_detached",
        "_dispatching",
        "_drain_waiters",
        "_expect_continue",
        "_feed",
        "_fresh",
        "_head_budget",
        "_head_guard",
        "_headers",
        "_host_count",
        "_leftover",
        "_line",
        "_listener",
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
        "_sniffing",
        "_started_at",
        "_transfer_encoding",
        "_unusual",
        "_url",
        "batch",
        "closed",
        "config",
        "head_since",
        "idle_since",
        "info",
        "loop",
        "peer_eof",
        "state",
        "transport",
        "write_paused",
    )

    def __init__(self, state: ServerState, listener: ConnectionFactory | None = None) -> None:
        # Every value here is either a constant or read from the server's state, which
        # worked out the per-connection limits from the config once (serverstate.py).
        self.state = state
        self.config = state.config
        self.loop = state.loop
        #: The listener that accepted this connection (it may know the local
        #: address); None for a connection made by hand (tests, benchmarks).
        self._listener = listener
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        #: What interfaces may know of this connection; set in connection_made.
        self.info: ConnectionInfo = None  # type: ignore[assignment]
        self.closed = False
        self.peer_eof = False
        self.write_paused = False
        self._parser = httptools.HttpRequestParser(self)
        #: Where received bytes go: the parser, or an upgrade request's body (UpgradeBody).
        self._feed: Callable[[bytes], None] = self._parser.feed_data
        self._url = b""
        #: The read being parsed when it began at a message boundary (no part of a
        #: head or body before it): its first line is the next head's request line,
        #: where RequestChecks._version reads the HTTP version. None otherwise, and
        #: once a head of that read is complete (a later one starts elsewhere).
        self._fresh: bytes | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._max_head = state.max_head
        self._max_target = state.max_target
        self._max_headers = state.max_headers
        self._max_body = state.max_body
        self._access_log = state.access_log
        self._head_budget = state.max_head
        self._since_head = 0
        self._head_guard = state.head_guard
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
        #: Responses written while pipelined requests run, sent in one write at the
        #: end (None: each write goes out at once). Exchange.respond reads it.
        self.batch: list[bytes] | None = None
        self._detached = False
        self._leftover = b""
        #: The start of a request line a read ended in (see _note_line), else None.
        self._line: bytes | None = None
        self._dispatching = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        #: The sweep's stamps (endings.py): when the connection went idle, when the
        #: request head being read began; 0.0 while not timing. Public: endings.sweep
        #: reads HTTP/2's (h2socket.py) too.
        self.idle_since = 0.0
        self.head_since = 0.0
        self._started_at = 0.0
        #: The first bytes may be HTTP/2's preface (see ConnectionEndings._sniff_preface).
        self._sniffing = False

    # Defined by HTTPConnection (connection.py); endings.py calls it. A real method,
    # not a stub under TYPE_CHECKING: mypyc compiles the chain as native classes.
    def _run_next(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
