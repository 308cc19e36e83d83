"""The HTTP/1.1 connection's side of the Exchange contract: what an Exchange calls
on its connection (exchange.py lists it) to write, to wait for the transport, and
to report its body read. Writes go straight to the transport, or into the batch
of responses that pipelined requests collect for one write; the transport's
flow control (pause_writing, resume_writing) feeds ``write_paused`` and the
drain. The layers of the connection: see connstate.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .connstate import PIPELINE_HIGH_WATER, ConnectionState
from .transports import drain_writes, pace, release_drained

if TYPE_CHECKING:
    from .exchange import Exchange


class ConnectionWrites(ConnectionState):
    __slots__ = ()

    # -- asyncio.Protocol: the transport's flow control ------------------------------
    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        release_drained(self._drain_waiters)

    # -- what an Exchange calls: the connection's side of the split (see exchange.py) ---
    def write(self, data: bytes) -> None:
        """Write response bytes (collected while a batch of pipelined requests runs)."""
        batch = self.batch
        if batch is not None:
            batch.append(data)
            if len(batch) > 64:
                self.flush_batch()
                self.batch = []
            return
        if not self.closed:
            self.transport.write(data)

    def write_parts(self, parts: tuple[bytes, ...]) -> None:
        """Write several buffers without joining them first (large body chunks)."""
        batch = self.batch
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
                pace(transport)

    def flush_batch(self) -> None:
        """Write what the batch holds now, and stop batching."""
        batch = self.batch
        self.batch = None
        if batch and not self.closed:
            self.transport.write(b"".join(batch))

    async def drain(self) -> None:
        """Wait while the transport's buffer is over its high-water mark."""
        await drain_writes(self, self._drain_waiters)

    def abort_after_write(self) -> None:
        """The response is broken (e.g. wrong length): close once flushed."""
        self._read_closed = True

    def declared_length(self, ex: Exchange) -> int:
        """The Content-Length of ``ex``'s body while the parser reads it; -1 if the
        body is chunked or the parser is not reading it."""
        return self._content_length if self._reading is ex else -1

    def body_consumed(self) -> None:
        """An exchange's handler read its buffered body: resume reading if it paused."""
        if self._read_paused and len(self._pipeline) <= PIPELINE_HIGH_WATER:
            self._read_paused = False
            if not self.closed:
                self.transport.resume_reading()
