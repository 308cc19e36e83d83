"""An HTTP/2 stream as a byte channel: the tunnel of RFC 8441's extended CONNECT.

Once ``H2Exchange.switch_protocols`` has answered an extended CONNECT with
``:status 200``, the stream carries another protocol's bytes both ways (a
WebSocket's frames). ``StreamTunnel`` is the transport that protocol gets, the
same calls it makes on a TCP connection of its own, so the WebSocket session
(websocket/connection.py) runs unchanged over both:

* ``write``: DATA frames through the codec, under the peer's flow control. While
  the codec holds more than ``write_high_water`` bytes of the stream (or the socket
  is paused) the protocol is paused (``pause_writing``), and resumed once the
  peer's window has taken them: a slow reader paces the sender, as TCP would.
* reading: the stream's DATA goes to ``data_received``. ``pause_reading`` holds the
  stream's receive-window credit back (h2flow): a client that keeps to its window
  sends at most one window more; one that sends past it is reset
  (FLOW_CONTROL_ERROR), since a paused protocol would otherwise take it all.
* ``close``: END_STREAM after what is queued (TCP's FIN); the tunnel is over
  (``connection_lost``) once the client has ended its side as well, or reset it.
* ``abort``: RST_STREAM (CANCEL).
* the client's END_STREAM is ``eof_received``; as an asyncio transport does, the
  tunnel then ends its own side unless the protocol asks to stay half-open. The
  client's RST_STREAM, or the connection's end, is ``connection_lost``.

The stream outlives its handler (a closing handshake may still be running when
the app returns): the handler's end reaches the connection (``stream_done``) once
the tunnel is over.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .errors import CANCEL, FLOW_CONTROL_ERROR, ClientDisconnected

if TYPE_CHECKING:
    from .h2exchange import H2Exchange


class StreamTunnel(asyncio.Transport):
    """One extended CONNECT stream's bytes, as an asyncio transport."""

    def __init__(self, ex: H2Exchange, received: int) -> None:
        super().__init__()
        self._ex = ex
        self._protocol: asyncio.BaseProtocol | None = None
        #: DATA bytes received on the stream, checked against the credit given.
        self._received = received
        self._local_ended = False  # END_STREAM sent
        self._remote_ended = ex.body_complete  # END_STREAM received
        self._write_paused = False
        self._drain_task: asyncio.Task[None] | None = None  # (kept: the loop holds tasks weakly)
        self._handler_ended = False
        self._handler_exc: BaseException | None = None
        #: Over: both sides ended, or the stream reset (connection_lost was called).
        self.finished = False

    # -- asyncio.Transport -------------------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._ex.h2.transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        if self._remote_ended:  # the client ended its side before the 200
            self._ex.h2.loop.call_soon(self._eof)

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return self._local_ended or self.finished

    def is_reading(self) -> bool:
        return not self._ex.read_paused

    def pause_reading(self) -> None:
        self._ex.read_paused = True

    def resume_reading(self) -> None:
        ex = self._ex
        if ex.read_paused:
            ex.read_paused = False
            if not self.finished:
                ex.h2.body_consumed(ex)  # the credit held while paused goes out

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._local_ended or self.finished or not data:
            return
        ex = self._ex
        ex.handle.send_data(data)
        ex.h2.flush()
        if not self._write_paused and ex.write_paused:
            self._write_paused = True
            if isinstance(self._protocol, asyncio.Protocol):
                self._protocol.pause_writing()
            self._drain_task = ex.h2.loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            await self._ex.wait_for_window()
        except ClientDisconnected:
            return  # the stream is gone: connection_lost tells the protocol
        finally:
            self._drain_task = None
        self._write_paused = False
        if not self.finished and isinstance(self._protocol, asyncio.Protocol):
            self._protocol.resume_writing()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.close()

    def close(self) -> None:
        if not self._local_ended and not self.finished:
            self._local_ended = True
            ex = self._ex
            if not ex.reset and not ex.h2.closed:
                ex.handle.end_message()
                ex.h2.flush()
        if self._remote_ended:
            self._finish()

    def abort(self) -> None:
        if not self.finished:
            self._ex.reset_stream(CANCEL)  # which ends the tunnel (lost)

    def get_write_buffer_size(self) -> int:
        return self._ex.handle.pending_bytes or 0

    # -- the exchange's side -----------------------------------------------------------------
    def received(self, data: bytes) -> None:
        """DATA on the stream."""
        self._received += len(data)
        ex = self._ex
        if self._received > ex.credit_given:
            ex.reset_stream(FLOW_CONTROL_ERROR)
        elif not self.finished and isinstance(self._protocol, asyncio.Protocol):
            self._protocol.data_received(data)

    def ended(self) -> None:
        """The client's END_STREAM."""
        self._remote_ended = True
        if self._protocol is not None:
            self._eof()

    def lost(self) -> None:
        """The stream was reset (either side) or the connection ended."""
        self._finish()

    def handler_ended(self, exc: BaseException | None) -> None:
        """The stream's handler is done; the connection hears of it when the tunnel is."""
        self._handler_ended = True
        self._handler_exc = exc

    def _eof(self) -> None:
        if self.finished:
            return
        protocol = self._protocol
        keep_open = protocol.eof_received() if isinstance(protocol, asyncio.Protocol) else None
        if not keep_open or self._local_ended:
            self.close()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        ex = self._ex
        ex.read_paused = False
        if self._protocol is not None:
            self._protocol.connection_lost(None)
        if self._handler_ended:
            ex.h2.stream_done(ex, self._handler_exc)
