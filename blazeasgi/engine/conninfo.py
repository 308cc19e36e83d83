"""What an interface may know of the connection behind an Exchange: the
per-connection half of the engine's contract (exchange.py is the per-request half).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from .serverstate import ServerState


def address(name: Any) -> tuple[str, int] | None:
    """(address, port) from a transport's ``peername`` or ``sockname``; None when
    the socket is not an IP socket (AF_UNIX gives a path).

    An AF_INET name is already that pair: it is used as it is (compiled, the
    assignment checks its types), not rebuilt from str() and int() (about 650
    instructions less per connection in benchmarks.callgrind); AF_INET6 adds
    flow info and scope id, which are left out.
    """
    if not isinstance(name, tuple):
        return None
    if len(name) == 2:
        pair: tuple[str, int] = name
        return pair
    host: str = name[0]
    port: int = name[1]
    return (host, port)


class ConnectionInfo:
    """What an interface may know of the connection behind an Exchange.

    Made once per connection (``HTTPConnection.connection_made``) and shared by
    all its requests as ``Exchange.info``. Only ``closed`` changes after, and
    only the engine changes it.
    """

    __slots__ = ("client", "closed", "config", "loop", "scheme", "server", "state", "tls")

    def __init__(
        self,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        scheme: str,
        tls: dict[str, Any] | None,
        state: ServerState,
    ) -> None:
        #: (address, port) of the peer, None when not an IP socket.
        self.client = client
        #: (address, port) the connection was accepted on, None when not an IP socket.
        self.server = server
        #: "http" or "https" (what the socket is, not what a proxy reports).
        self.scheme = scheme
        #: The ASGI ``tls`` extension's dict when serving TLS, else None.
        self.tls = tls
        #: The server's settings.
        self.config: Config = state.config
        #: The event loop serving the connection.
        self.loop: asyncio.AbstractEventLoop = state.loop
        #: What all connections of the server share (draining, default_headers,
        #: access_log, the set of live WebSockets).
        self.state = state
        #: The connection is closed, or was handed to another protocol (the engine
        #: sets it with ``HTTPConnection.closed``). ``Exchange.disconnected`` says
        #: the same; this is the cheaper read for an interface's hot path.
        self.closed = False
