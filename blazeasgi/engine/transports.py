"""What the engine asks of a transport beyond ``asyncio.Transport``: pacing after
``writelines`` (a CPython bug), writers waiting for its buffer to drain (one
``drain`` for both HTTP protocols, its waiters for WebSockets too), and the bytes a
socket holds that the loop has not read yet (the sweep and the shutdown). Cold:
never called per request on the common path.
"""

from __future__ import annotations

import array
import asyncio
from typing import Protocol

try:  # FIONREAD, for unread_bytes
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .errors import ClientDisconnected


def pace(transport: asyncio.Transport) -> None:
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


async def wait_drained(loop: asyncio.AbstractEventLoop, waiters: list[asyncio.Future[None]]) -> None:
    """Wait, as one of ``waiters``, until release_drained wakes them: the protocol's
    ``resume_writing``, or its ``connection_lost`` (the caller checks which)."""
    waiter = loop.create_future()
    waiters.append(waiter)
    await waiter


def release_drained(waiters: list[asyncio.Future[None]]) -> None:
    """Wake every writer waiting in wait_drained, and forget them."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()


class Writer(Protocol):
    """What drain_writes needs of a connection, HTTP/1.1's or HTTP/2's."""

    @property
    def closed(self) -> bool: ...
    @property
    def write_paused(self) -> bool: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...


async def drain_writes(conn: Writer, waiters: list[asyncio.Future[None]]) -> None:
    """A connection's ``drain``: return once its transport takes writes again (at
    once if it does), waiting as one of ``waiters`` (the connection's, which its
    ``resume_writing`` and ``connection_lost`` release). Raises ClientDisconnected
    if the connection is closed, before or meanwhile."""
    if conn.closed:
        raise ClientDisconnected("client disconnected")
    if not conn.write_paused:
        return
    await wait_drained(conn.loop, waiters)
    if conn.closed:
        raise ClientDisconnected("client disconnected")


#: How long a connection closed with linger() reads on for the client's FIN.
LINGER_SECONDS = 1.0


def linger(transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
    """Close ``transport`` without losing what was written to it (RFC 9112 §9.6).

    Closing a socket whose receive buffer holds unread bytes makes the kernel
    reset the connection and drop what it has not sent yet of the last response
    (bytes arriving after the close are answered with a reset too). The client
    may well still be sending: an HTTP/2 client's WINDOW_UPDATE or SETTINGS ACK
    crossing our GOAWAY, an HTTP/1.1 client's body of a request answered 400 or
    413. (Seen in CI: an HTTP/2 client got the GOAWAY but never the response
    written before it.) So: half-close once the writes are flushed, keep reading
    (the protocol drops what comes), and close at the client's FIN (the
    protocol's eof_received returns False) or after LINGER_SECONDS. TLS has no
    half-close: it closes at once, as before.
    """
    if transport.is_closing():
        return
    if not transport.can_write_eof():
        transport.close()
        return
    try:
        transport.write_eof()
    except OSError:  # the client is gone already (asyncio: ENOTCONN after a reset)
        transport.close()
        return
    if not transport.is_reading():
        transport.resume_reading()  # the FIN is seen only while reading
    loop.call_later(LINGER_SECONDS, transport.close)


def unread_bytes(transport: asyncio.Transport | None) -> int:
    """Bytes received on ``transport``'s socket that the loop has not read yet (0 if
    unknown). A system call: for the sweep and the shutdown, never per request."""
    if fcntl is None or transport is None:  # pragma: no cover - Windows
        return 0
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
    except (OSError, ValueError):  # closed meanwhile
        return 0
    return count[0]
