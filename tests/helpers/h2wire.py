"""HTTP/2 as a client reads it, without a client's state: for fuzzing, where the
bytes a test sent need not be a conversation h2 would have had (h2, as a client,
refuses an answer on a stream it did not open itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    RstStreamFrame,
    WindowUpdateFrame,
)

if TYPE_CHECKING:
    from tests.conftest import MockConnection


class MalformedOutput(AssertionError):
    """What the server sent is not well-formed HTTP/2."""


def read_as_client(output: bytes) -> None:
    """What the server sent, read as its client would: whole frames (hyperframe
    parses each), of at most the default frame size; responses only on a
    client's (odd) streams; header blocks that decode (hpack, one decoder for the
    connection) to a response (``:status`` first) or trailers (no pseudo-field);
    nothing but RST_STREAM and WINDOW_UPDATE on a stream the server ended."""
    decoder = hpack.Decoder()
    block = b""
    started: set[int] = set()
    ended: set[int] = set()
    pos = 0
    while len(output) - pos >= 9:
        frame, length = Frame.parse_frame_header(memoryview(output[pos : pos + 9]))
        end = pos + 9 + length
        if end > len(output):
            break
        if length > 16384:
            raise MalformedOutput(f"a frame of {length} bytes (the client allowed 16,384)")
        frame.parse_body(memoryview(output[pos + 9 : end]))
        pos = end
        stream_id = frame.stream_id
        if stream_id and not stream_id & 1 and isinstance(frame, (HeadersFrame, DataFrame)):
            # (zttp answers a client's frame on an even stream with RST_STREAM.)
            raise MalformedOutput(f"a response on stream {stream_id}, which the client did not open")
        if stream_id in ended and not isinstance(frame, (RstStreamFrame, WindowUpdateFrame)):
            raise MalformedOutput(f"{frame} after the stream ended")
        if isinstance(frame, (HeadersFrame, ContinuationFrame)):
            block += frame.data
            if "END_HEADERS" in frame.flags:
                fields = decoder.decode(block, raw=True)
                block = b""
                names = [name for name, _ in fields]
                if stream_id not in started:
                    if not names or names[0] != b":status" or b":status" in names[1:]:
                        raise MalformedOutput(f"a response head without one leading :status: {fields}")
                    if not fields[0][1].startswith(b"1"):
                        started.add(stream_id)
                elif any(name.startswith(b":") for name in names):
                    raise MalformedOutput(f"pseudo-fields in trailers: {fields}")
        elif isinstance(frame, DataFrame) and stream_id not in started:
            raise MalformedOutput(f"DATA before a response on stream {stream_id}")
        if "END_STREAM" in frame.flags or isinstance(frame, RstStreamFrame):
            ended.add(stream_id)
    if pos != len(output):
        raise MalformedOutput(f"the server's output ends inside a frame: {output[pos:]!r}")


class FuzzFailure(AssertionError):
    """The engine broke an invariant every HTTP/2 fuzzer checks (see ``replay``)."""


async def replay(conn: MockConnection, wire: bytes, cuts: list[int]) -> None:
    """Feed ``wire`` to ``conn`` in pieces cut at ``cuts``, then end the connection,
    checking what the HTTP/2 fuzzers (hypothesis and atheris) both assert: all the
    server sent is well-formed (``read_as_client``), the connection is closed with
    no stream left open, and the server counts no connection any more."""
    from blazeasgi.engine import http2

    sent = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        if end > start and not conn.transport.closed:
            conn.transport.protocol.data_received(wire[start:end])
        sent.append(await conn.settle(5))
    sent.append(await conn.settle(50))
    read_as_client(b"".join(sent))
    protocol = conn.transport.protocol
    if not conn.transport.closed:
        conn.transport.close()
    await conn.settle(50)
    if isinstance(protocol, http2.HTTP2Connection):
        if not protocol.closed:
            raise FuzzFailure("the connection did not close")
        if protocol.streams:
            raise FuzzFailure(f"streams left open: {sorted(protocol.streams)}")
    if conn.state.connections:
        raise FuzzFailure(f"the server still counts {conn.state.connections}")
    conn.state.runners.close()  # the server shuts down: its idle runner tasks end
    await conn.settle(5)
