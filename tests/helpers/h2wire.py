"""HTTP/2 as a client reads it, without a client's state: for fuzzing, where the
bytes a test sent need not be a conversation h2 would have had (h2, as a client,
refuses an answer on a stream it did not open itself)."""

from __future__ import annotations

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    RstStreamFrame,
    WindowUpdateFrame,
)


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
