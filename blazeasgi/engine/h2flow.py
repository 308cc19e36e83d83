"""Request-body flow control on HTTP/2: a stream's window opens as its handler reads.

zttp returns receive-window credit as it parses DATA: once about half a window is
used it queues a WINDOW_UPDATE for the stream and one for the connection, whether
or not anything read the bytes. A handler that never reads its body would then let
its client send without end. So the connection takes the stream-level
WINDOW_UPDATE frames out of what the codec queues (``take_stream_credit``), keeps
their increments with the stream (``H2Exchange.held_credit``), and sends them
(``window_update``) only once the handler has read everything buffered: a stream
holds at most one window (zttp's initial 65,535 bytes) of unread body.

Only credit the codec granted is ever passed on, so the codec's own check of the
peer against its (larger) idea of the window can never fail a peer that keeps to
ours. The connection-level updates pass as the codec queues them: one stream's
unread body does not stop the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .h2exchange import H2Exchange

#: The stream window the peer starts with: zttp announces no
#: SETTINGS_INITIAL_WINDOW_SIZE, so RFC 9113's default.
INITIAL_WINDOW = 65535
#: Unread request body a connection holds, in read_high_water units, before it stops
#: reading the socket; each stream holds at most one window of it (h2flow).
UNREAD_STREAMS = 16
_WINDOW_UPDATE = 0x8
_STREAM_ID_MASK = 0x7FFFFFFF


def take_stream_credit(data: bytes, credit: dict[int, int]) -> bytes:
    """``data`` (whole frames, as the codec queued them) less its stream-level
    WINDOW_UPDATE frames, whose increments are added to ``credit`` by stream id."""
    parts: list[bytes] = []
    kept = 0  # start of the frames not yet copied to parts
    pos = 0
    end = len(data)
    while pos + 9 <= end:
        size = int.from_bytes(data[pos : pos + 3], "big")
        after = pos + 9 + size
        if data[pos + 3] == _WINDOW_UPDATE:
            stream_id = int.from_bytes(data[pos + 5 : pos + 9], "big") & _STREAM_ID_MASK
            if stream_id:
                increment = int.from_bytes(data[pos + 9 : after], "big") & _STREAM_ID_MASK
                credit[stream_id] = credit.get(stream_id, 0) + increment
                parts.append(data[kept:pos])
                kept = after
        pos = after
    if not parts:
        return data
    parts.append(data[kept:])
    return b"".join(parts)


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame (RFC 9113 §6.9) for ``stream_id``."""
    return b"\x00\x00\x04\x08\x00" + stream_id.to_bytes(4, "big") + increment.to_bytes(4, "big")


def hold_credit(streams: dict[int, H2Exchange], data: bytes) -> bytes:
    """``data`` (what the codec queued) less its stream WINDOW_UPDATEs: a stream
    with unread body keeps their credit (``held_credit``, passed on as its handler
    reads: HTTP2Connection.body_consumed), as does a tunnel whose reader is paused;
    a stream read up passes it on here."""
    credit: dict[int, int] = {}
    data = take_stream_credit(data, credit)
    for stream_id, increment in credit.items():
        ex = streams.get(stream_id)
        if ex is None or ex.body_complete or ex.reset or ex.body_error is not None:
            continue  # no more body to come
        if ex.buffered or ex.read_paused:  # (read_paused: a tunnel's reader, h2tunnel)
            ex.held_credit += increment
        else:
            ex.credit_given += increment
            data += window_update(stream_id, increment)
    return data
