"""One accepted WebSocket: the asyncio Protocol the transport is handed to after the 101
(or, over HTTP/2, the stream's transport after the 200: engine/h2tunnel.py).

Everything the two interfaces (ASGI, native) need sits here once:

* reading: the codec turns bytes into whole messages, queued for ``receive``; past
  ``Config.ws_max_queue`` unread messages reading pauses, so a client cannot fill
  memory faster than the app reads (the TCP window then slows it down);
* writing: ``send`` writes one frame and, while the transport's buffer is over its
  high-water mark (``pause_writing``), waits for it to drain: a slow reader paces
  the app and memory stays bounded;
* closing: the close handshake either way, a close timeout, keepalive pings (1011
  when a pong is overdue) and ``shutdown`` (1001) for the server's graceful stop;
* the access lines: the accept and the close (code, duration, messages each way),
  in ``--access-log-format`` (blazeasgi/logs.py, log_websocket);
* the server's registry of live WebSockets (``ServerState.websockets``), which the
  graceful shutdown closes and waits for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING

from ..engine.errors import ClientDisconnected
from ..engine.transports import release_drained, wait_drained
from ..logs import log_websocket
from .codec import Codec, Message

if TYPE_CHECKING:
    from ..engine.exchange import Exchange

logger = logging.getLogger("blazeasgi.error")
access_logger = logging.getLogger("blazeasgi.access")

#: Seconds the peer gets to answer our close frame before the TCP connection is cut.
CLOSE_TIMEOUT = 10.0


class WebSocketConnection(asyncio.Protocol):
    __slots__ = (
        "_close_timer",
        "_drain_waiters",
        "_ex",
        "_max_queue",
        "_ping_interval",
        "_ping_payload",
        "_ping_timeout",
        "_ping_timer",
        "_pong_timer",
        "_queue",
        "_read_paused",
        "_session_done",
        "_started_at",
        "_waiter",
        "_write_paused",
        "close_code",
        "close_reason",
        "close_sent",
        "closed",
        "codec",
        "loop",
        "messages_in",
        "messages_out",
        "state",
        "transport",
    )

    def __init__(self, ex: Exchange, codec: Codec, transport: asyncio.Transport) -> None:
        info = ex.info
        config = info.config
        self.loop = info.loop
        self.state = info.state
        self.transport = transport
        self.codec = codec
        self._queue: deque[Message] = deque()
        self._max_queue = max(1, config.ws_max_queue)
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = True  # the engine paused reading at the upgrade
        self._write_paused = ex.write_paused
        self._drain_waiters: list[asyncio.Future[None]] = []
        #: The transport is gone.
        self.closed = False
        #: This side started the closing handshake (or failed the connection).
        self.close_sent = False
        #: Set once the app is to see the end: the close code and reason it gets.
        self.close_code: int | None = None
        self.close_reason = ""
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_interval = config.ws_ping_interval
        self._ping_timeout = config.ws_ping_timeout
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._session_done = False
        #: For the access lines: the request that opened the session, when it did.
        self._ex = ex
        self._started_at = 0.0
        #: Whole messages received from the client and sent to it.
        self.messages_in = 0
        self.messages_out = 0

    def start(self, leftover: bytes) -> None:
        """Take over the transport (after switch_protocols) and start reading."""
        if self._logs_access():
            self._started_at = perf_counter()
            info = self._ex.info
            log_websocket(info.config.access_log_format, info.client, self._ex)
        self.state.websockets.add(self)
        self.transport.set_protocol(self)
        if leftover:  # frames the client sent right behind its request head
            self.data_received(leftover)
        if self.closed or self.close_code is not None:
            return
        if len(self._queue) < self._max_queue:
            self._read_paused = False
            self.transport.resume_reading()
        if self._ping_interval > 0:
            self._ping_timer = self.loop.call_later(self._ping_interval, self._send_ping)
        if self.state.draining:  # accepted while the server stops: close at once
            self.shutdown()

    # -- asyncio.Protocol ----------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        codec = self.codec
        try:
            messages, out = codec.feed(data)
        except Exception:  # pragma: no cover - the libraries report errors as closes
            logger.exception("WebSocket frame parser failed")
            self.fail(1011, "")
            return
        if out:
            self.transport.write(out)
        if messages and not self.close_sent:
            queue = self._queue
            queue.extend(messages)
            self.messages_in += len(messages)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if len(queue) >= self._max_queue and not self._read_paused:
                self._read_paused = True
                self.transport.pause_reading()
        if codec.pong is not None:
            self._on_pong(codec.pong)
            codec.pong = None
        if codec.finished:
            self._peer_finished()

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost reports 1006 if no close came

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.close_code is None:
            self.close_code, self.close_reason = 1006, ""
        self._stop_timers()
        self._wake()
        release_drained(self._drain_waiters)
        if self._session_done:
            self.state.websockets.discard(self)
        if self._logs_access():
            info = self._ex.info
            duration_ms = (perf_counter() - self._started_at) * 1000.0
            closed = (self.close_code, self.messages_in, self.messages_out)
            log_websocket(info.config.access_log_format, info.client, self._ex, duration_ms, closed)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        release_drained(self._drain_waiters)

    # -- what the interfaces call -------------------------------------------------------------
    def take_ready(self) -> Message | None:
        """A message already waiting, taken without awaiting; None when there is
        none, or while reading is paused (``receive`` then resumes it)."""
        queue = self._queue
        if queue and not self._read_paused:
            return queue.popleft()
        return None

    async def receive(self) -> Message | None:
        """The next message, or None once the connection is over (see close_code)."""
        queue = self._queue
        while not queue:
            if self.close_code is not None:
                return None
            waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        message = queue.popleft()
        if self._read_paused and len(queue) <= self._max_queue // 2 and self.close_code is None:
            self._read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        """Send one message; waits while the client is not reading fast enough."""
        if self.close_code is not None:
            raise ClientDisconnected("WebSocket is closed")
        self.transport.write(self.codec.encode(message))
        self.messages_out += 1
        if self._write_paused:
            await self._drain()

    async def _drain(self) -> None:
        while self._write_paused and not self.closed:
            await wait_drained(self.loop, self._drain_waiters)
        if self.closed:
            raise ClientDisconnected("WebSocket is closed")

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; receive() reports the end from now on."""
        if self.close_code is not None:
            return
        self.close_code, self.close_reason = code, reason
        self.close_sent = True
        self._queue.clear()
        self._stop_timers()
        if self.closed:
            return
        out = self.codec.close(code, reason)
        if out:
            self.transport.write(out)
        self._wake()
        if self._read_paused:  # read on, for the peer's close frame
            self._read_paused = False
            self.transport.resume_reading()
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.abort)

    def fail(self, code: int, reason: str) -> None:
        """Close without waiting for the peer (keepalive timeout, internal error)."""
        if self.closed:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.close_sent = True
        self._queue.clear()
        out = self.codec.fail(code, reason)
        if out:
            self.transport.write(out)
        self._wake()
        self._stop_timers()
        self.transport.close()
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.abort)

    def shutdown(self) -> None:
        """The server is stopping: close with 1001 (Going Away)."""
        self.close(1001, "server shutting down")

    def abort(self) -> None:
        self._close_timer = None
        if not self.closed:
            self.transport.abort()

    def session_ended(self, error: bool = False) -> None:
        """The app's handler returned (or raised): close if it left the socket open."""
        self._session_done = True
        if self.close_code is None:
            if error:
                self.close(1011, "")
            else:
                self.close(1000, "")
        if self.closed:
            self.state.websockets.discard(self)

    # -- internals --------------------------------------------------------------------------
    def _logs_access(self) -> bool:
        return self.state.access_log and access_logger.isEnabledFor(logging.INFO)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _peer_finished(self) -> None:
        """The peer's close frame arrived (or it broke the protocol): close TCP."""
        codec = self.codec
        if self.close_code is None:
            self.close_code = codec.close_code if codec.close_code is not None else 1005
            self.close_reason = codec.close_reason
            self.close_sent = True
            self._wake()
        self._stop_timers()
        if not self.closed:
            # RFC 6455 §7.1.1: the server closes the TCP connection first.
            self.transport.close()
            self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.abort)

    def _stop_timers(self) -> None:
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = self._close_timer = None

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self.close_code is not None or self.closed:
            return
        payload = os.urandom(4)
        self._ping_payload = payload
        self.transport.write(self.codec.ping(payload))
        if self._ping_timeout > 0:
            self._pong_timer = self.loop.call_later(self._ping_timeout, self._ping_timed_out)
        else:
            self._ping_timer = self.loop.call_later(self._ping_interval, self._send_ping)

    def _on_pong(self, payload: bytes) -> None:
        if self._ping_payload is None or payload != self._ping_payload:
            return  # unsolicited or stale
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            if self.close_code is None:
                self._ping_timer = self.loop.call_later(self._ping_interval, self._send_ping)

    def _ping_timed_out(self) -> None:
        self._pong_timer = None
        logger.info("WebSocket keepalive ping timed out; closing the connection")
        self.fail(1011, "keepalive ping timeout")
