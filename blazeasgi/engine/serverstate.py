"""What every connection of one server shares, and the protocol factory of a listener.

Compiled with the connection (blazeasgi/_compiled.py): the connection reads the
server's clock, dispatch, runners and headers on every request and the limits
below on every connection, and a native class is read field by field instead of
through attribute lookups (``benchmarks.callgrind``: see ``ServerState``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol, cast

from ..config import Config
from ..tls import ServerTLS
from . import http2
from .connection import HTTPConnection
from .conninfo import ConnectionInfo, address
from .connstate import READ_SIZE
from .exchange import Exchange
from .http2 import HTTP2Connection
from .http11 import default_headers
from .taskpaths import HandlerRunners, TaskPerRequest
from .tasks import RunnerPool, Suspended

#: What an interface gives the engine per request: None when the response was
#: produced synchronously, else a coroutine the engine runs (see tasks.RunnerPool).
Dispatch = Callable[[Exchange], "Coroutine[Any, Any, Any] | None"]

#: The write buffer limit both loops give a plain TCP transport (asyncio's
#: _FlowControlMixin and uvloop's UVStream: 64 KiB high, a quarter of it low).
#: A connection sets its own only when the configured one differs: TLS transports
#: start from other values (uvloop's: 512 KiB), so they are always set.
TRANSPORT_HIGH_WATER: Final = 65536

#: Addresses a listener may be bound to that stand for every local address: a
#: connection accepted on one says which address it came in on only when asked.
_WILDCARDS: Final = frozenset({"0.0.0.0", "::", ""})


class LiveWebSocket(Protocol):
    """An accepted WebSocket (blazeasgi.websocket), for the graceful shutdown."""

    def shutdown(self) -> None: ...

    def abort(self) -> None: ...


class ServerState:
    """What every connection of one server shares. Mutated only by the tick.

    A native class when compiled: read as C fields, not through a Python class's
    attribute lookups. With the limits below worked out once and ConnectionFactory,
    ``benchmarks.callgrind`` (compiled, instructions per request) measured native
    60.3k -> 52.1k and ASGI 68.4k -> 60.2k with ``--close``, kept alive 30.5k ->
    29.6k and 38.5k -> 37.5k.
    """

    __slots__ = (
        "access_log",
        "clock",
        "config",
        "connections",
        "default_headers",
        "dispatch",
        "draining",
        "head_guard",
        "http2",
        "loop",
        "max_body",
        "max_connections",
        "max_head",
        "max_headers",
        "max_target",
        "runners",
        "set_write_limit",
        "suspended",
        "tls",
        "websockets",
    )

    def __init__(
        self,
        config: Config,
        dispatch: Dispatch,
        loop: asyncio.AbstractEventLoop,
        tls: ServerTLS | None = None,
    ) -> None:
        self.config = config
        self.dispatch = dispatch
        self.loop = loop
        #: Set when serving TLS: each connection asks it for its ``tls`` extension.
        self.tls = tls
        self.connections: set[HTTPConnection | HTTP2Connection] = set()
        #: Accepted WebSockets: detached from HTTP, closed with 1001 on shutdown.
        self.websockets: set[LiveWebSocket] = set()
        self.draining = False
        #: Serves a connection that turns out to be HTTP/2 (http2.take_over), or
        #: None when HTTP/2 is off (--no-http2) or its codec is not installed.
        self.http2: Callable[[ServerState, ConnectionInfo, asyncio.Transport, bytes], None] | None = (
            http2.take_over if http2.serves_http2(config) else None
        )
        #: Handlers suspended in runner tasks; while any are, new ones start in turn.
        self.suspended = Suspended()
        #: Runs the handler coroutines of every connection (engine/tasks.py).
        self.runners: RunnerPool | TaskPerRequest = HandlerRunners(loop, self.suspended)
        # Decided once: with the access logger below INFO (--log-level warning, a
        # --log-config that silences it) requests keep the no-access-log fast path.
        access = logging.getLogger("blazeasgi.access")
        self.access_log = config.access_log and access.isEnabledFor(logging.INFO)
        # What each new connection would otherwise work out from the config again.
        #: config.max_connections (0: no limit).
        self.max_connections = config.max_connections
        self.max_head = config.max_head_size
        self.max_target = config.max_target_size
        self.max_headers = config.max_header_count
        # 0 means unlimited: compare against a bound no request can reach.
        self.max_body = config.max_body_size or (1 << 62)
        #: Bytes a connection may hold of an unfinished head: see connstate.READ_SIZE.
        self.head_guard = config.max_head_size + READ_SIZE
        #: Whether a new connection must set its transport's write buffer limit.
        self.set_write_limit = tls is not None or config.write_high_water != TRANSPORT_HIGH_WATER
        self.clock = loop.time()
        self.default_headers = b""
        self.refresh()

    def refresh(self) -> None:
        self.clock = self.loop.time()
        self.default_headers = default_headers(self.config.date_header, self.config.server_header)


class ConnectionFactory:
    """The protocol factory of one listening socket (``loop.create_server``'s first
    argument): a native callable, so a new connection costs no Python frame.

    ``sockname`` is the listener's ``getsockname()``. Bound to one address, every
    connection it accepts has that local address: it is worked out once here,
    not asked of each transport (both loops call getsockname at accept anyway; the
    saving is the address object built per connection). Bound to a wildcard
    (0.0.0.0, ::) each connection asks. A UNIX socket has no (address, port).
    """

    __slots__ = ("known", "server", "state")

    def __init__(self, state: ServerState, sockname: Any = None) -> None:
        self.state = state
        #: The local (address, port) of every connection, when ``known``.
        self.server: tuple[str, int] | None = None
        #: False: each connection asks its transport for its local address.
        self.known = False
        if isinstance(sockname, tuple):
            if sockname[0] not in _WILDCARDS:
                self.server = address(sockname)
                self.known = True
        elif isinstance(sockname, (str, bytes)):  # AF_UNIX
            self.known = True

    def __call__(self) -> asyncio.Protocol:
        # HTTPConnection has asyncio.Protocol's methods without subclassing it
        # (the loops only call them): compiled by mypyc, a subclass of a Python
        # class would be a plain Python class, with no direct attribute access.
        return cast(asyncio.Protocol, HTTPConnection(self.state, self))
