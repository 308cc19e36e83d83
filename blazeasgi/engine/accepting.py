"""The listening handles of one socket, and more of them while connections queue up.

libuv (under uvloop) takes in one connection per listening handle per loop pass, and a
busy server's pass serves every ready connection first. A socket gets ``base`` handles
(engine.server.acceptors: 8 under uvloop), on duplicates of it, which is enough for a
steady stream of new connections. A burst is not: 3,000 clients whose requests arrive
together (wrk's start, a load balancer reconnecting, a restart) went in 8 a pass, each
pass longer than the last, and the last waited 5 s and more (wrk timeouts at 5,000).

So a probe watches the socket's accept queue (TCP_INFO on a listening socket gives its
length; Linux, TCP): when more than GROW_AT connections wait, the socket gets up to
MAX_HANDLES handles, and the burst goes in within a few passes. Handles beyond ``base``
are closed again at the next tick (1 s) that finds the queue short, or SETTLE_TICKS
ticks after they were added, and the socket grows again only after a tick has found the
queue short: every handle is woken by every arriving connection, so spare ones cost short
connections up to 10% of their req/s. A socket the probe cannot
read (UNIX sockets, other systems) keeps ``base`` handles.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

__all__ = ["GROW_AT", "MAX_HANDLES", "Listener", "queued"]

logger = logging.getLogger("blazeasgi.error")

#: Connections waiting in the accept queue that make a socket grow its handles.
GROW_AT = 128
#: Ticks after which the extra handles go even if the queue is still long.
SETTLE_TICKS = 2
#: Listening handles per socket at most (each is a file descriptor).
MAX_HANDLES = 128
#: In ``struct tcp_info``: 8 one-byte fields, then rto, ato, snd_mss, rcv_mss and
#: unacked, which a listening socket fills with its accept queue's length.
_QUEUE_FIELD = struct.Struct("=I")
_QUEUE_OFFSET = 24
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None)


def queued(sock: socket.socket) -> int | None:
    """How many connections wait in listening ``sock``'s accept queue, or None where
    the system does not say (not Linux, not TCP)."""
    if _TCP_INFO is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _QUEUE_OFFSET + 4)
    except OSError:
        return None
    if len(info) < _QUEUE_OFFSET + 4:
        return None
    return int(_QUEUE_FIELD.unpack_from(info, _QUEUE_OFFSET)[0])


class Listener:
    """Listens on ``sock`` with ``base`` handles, growing to MAX_HANDLES under a burst.

    ``factory`` and ``options`` are ``loop.create_server``'s protocol factory and keyword
    arguments (backlog, TLS). ``base`` 1 (asyncio, which takes in the whole queue each
    pass) never grows.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        factory: Callable[[], asyncio.BaseProtocol],
        options: dict[str, Any],
        base: int,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.factory = factory
        self.options = options
        self.base = base
        self.servers: list[asyncio.AbstractServer] = []
        #: A long queue grows the handles: once, until a tick finds it short again.
        self._armed = True
        self._grown_ticks = 0
        self._growing = False
        self._closed = False
        self._probe: socket.socket | None = None

    async def start(self) -> None:
        for listener in [self.sock, *(self.sock.dup() for _ in range(self.base - 1))]:
            await self._listen(listener)
        if self.base > 1 and queued(self.sock) is not None:
            # The probe is one more duplicate, watched for readability: it becomes
            # ready whenever a connection waits, and is never accepted on.
            probe = self._probe = self.sock.dup()
            probe.setblocking(False)
            self.loop.add_reader(probe.fileno(), self._on_waiting)

    async def _listen(self, listener: socket.socket) -> None:
        try:
            server = await self.loop.create_server(self.factory, sock=listener, **self.options)
        except BaseException:
            if listener is not self.sock:  # a duplicate of ours: not left open
                listener.close()
            raise
        self.servers.append(server)
        if self._closed:  # closed while this one was being set up
            server.close()

    def _on_waiting(self) -> None:
        probe = self._probe
        if probe is None or not self._armed or (queued(probe) or 0) <= GROW_AT:
            return
        self._armed = False
        if not self._growing and not self._closed and len(self.servers) < MAX_HANDLES:
            self._growing = True
            self.loop.create_task(self._grow())

    async def _grow(self) -> None:
        try:
            while len(self.servers) < MAX_HANDLES and not self._closed:
                await self._listen(self.sock.dup())
        except OSError as exc:  # out of file descriptors: serve with what there is
            logger.warning("Could not add a listening handle: %s", exc)
        finally:
            self._growing = False

    def settle(self) -> None:
        """Once a tick: close the handles beyond ``base`` once the queue is short again,
        or SETTLE_TICKS ticks after they were added. A queue that stays long is a
        server at capacity with a new connection per request: more handles take no
        more in, and each costs a wake-up per arriving connection."""
        short = (queued(self.sock) or 0) <= GROW_AT
        if short:
            self._armed = True
        if self._growing or len(self.servers) <= self.base:
            self._grown_ticks = 0
            return
        self._grown_ticks += 1
        if short or self._grown_ticks >= SETTLE_TICKS:
            extra = self.servers[self.base :]
            del self.servers[self.base :]
            for server in extra:
                server.close()

    @property
    def handles(self) -> int:
        return len(self.servers)

    def close(self) -> None:
        """Stop listening (every handle, and the probe)."""
        self._closed = True
        if self._probe is not None:
            self.loop.remove_reader(self._probe.fileno())
            self._probe.close()
            self._probe = None
        for server in self.servers:
            server.close()

    async def wait_closed(self) -> None:
        for server in self.servers:
            await server.wait_closed()
