"""What an HTTP/2 connection refuses, and when it gives up on a request.

The codec (zttp) guards the protocol itself: concurrent streams (REFUSED_STREAM
past 128), streams per connection (4,096), rapid resets, CONTINUATION floods and
HPACK bombs (GOAWAY), its 64 KiB header-list limit (GOAWAY). The engine adds its
own limits per stream, as it has them for HTTP/1.1 (Config: target size, header
count, header-list size, body size), a guard against the frames the codec
reports nothing for (MAX_QUIET_BYTES), the request timeout, which follows
HTTP/1.1's head timeout, and a stream budget that ends a connection gracefully
before the codec's own limit ends it abruptly.

The stream budget ends a connection as RFC 9113 §6.8 says a server should end one
gracefully, in two steps. After MAX_STREAMS_PER_CONNECTION streams the server sends
GOAWAY (NO_ERROR) with the highest possible last stream id, which tells the client
to open no more streams (it reconnects for the next ones) but refuses none, then
a PING (GOAWAY_PING). The client answers that PING after it has read the GOAWAY, so
every stream it opened before it knew arrives before the answer. At the answer
(or GOAWAY_ACK_TIMEOUT later, from a client that does not answer) the second
GOAWAY names the last stream that arrived; those streams complete, any later one
is refused (REFUSED_STREAM: the client may retry it elsewhere), and the
connection closes once the last of them ends. A one-step GOAWAY at the budget
would refuse the streams already on their way, which h2load, for one, counts as
errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ProtocolError

if TYPE_CHECKING:
    from .h2exchange import H2Exchange
    from .h2socket import H2Socket

#: The highest stream id (RFC 9113 §5.1.1): a client that used it can open no more.
LAST_STREAM_ID = (1 << 31) - 1
#: zttp 0.0.35 ends a connection at its 4,097th stream with GOAWAY
#: ENHANCE_YOUR_CALM, dropping the streams in flight.
CODEC_STREAMS = 4096
#: The concurrent streams zttp allows a client (its SETTINGS_MAX_CONCURRENT_STREAMS).
CODEC_CONCURRENT_STREAMS = 128
#: Streams a connection serves before its first GOAWAY (see above). Between that
#: GOAWAY and the client's answer to the PING after it, a client can open at most
#: its concurrent streams more (each new one waits for an answer the server sent
#: before the GOAWAY); the budget leaves room for twice that under CODEC_STREAMS.
MAX_STREAMS_PER_CONNECTION = CODEC_STREAMS - 2 * CODEC_CONCURRENT_STREAMS
#: The payload of the PING after the first GOAWAY: its ACK is the round trip.
GOAWAY_PING_DATA = b"goaway.."
#: That PING frame (RFC 9113 §6.7): 8 bytes on stream 0. zttp sends no PING of
#: its own (it reports the ACK, as a Ping event), so the engine writes the frame.
GOAWAY_PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + GOAWAY_PING_DATA
#: Seconds the second GOAWAY waits for that ACK at most (checked once a second).
GOAWAY_ACK_TIMEOUT = 2.0
#: Bytes a client may send that give the codec nothing to report (no request,
#: body, end, reset, window update, SETTINGS or PING): empty DATA frames, PRIORITY,
#: unknown frame types, padding. Past it the connection is a flood (CVE-2019-9518)
#: and ends with GOAWAY ENHANCE_YOUR_CALM. Four times the largest header block
#: the codec takes (64 KiB), which may arrive over several reads before its event.
MAX_QUIET_BYTES = 1 << 18
#: zttp's own header-list limit (SETTINGS_MAX_HEADER_LIST_SIZE): past it the codec
#: ends the connection; a smaller Config.max_head_size is the engine's, per stream.
CODEC_HEADER_LIST = 65536


def check_request(h2: H2Socket, ex: H2Exchange, event: Any) -> ProtocolError | None:
    """The engine's own limits and what it does not serve yet (cold unless broken).

    ``event``: the codec's Request.
    """
    config = h2.config
    target = ex.target
    if len(target) > config.max_target_size:
        return ProtocolError(414, "URI Too Long")
    if len(ex.headers) > config.max_header_count:
        return ProtocolError(431, "Too many header fields")
    if h2.max_field_bytes and field_list_size(ex) > h2.max_field_bytes:
        return ProtocolError(431, "Request Header Fields Too Large")
    if ex.method == "CONNECT" and not ex.opens_tunnel(event.protocol):
        return ProtocolError(501, "CONNECT is not served over HTTP/2")
    if target[:1] != b"/" and not (target == b"*" and ex.method == "OPTIONS"):
        return ProtocolError(400, "Invalid request target")
    return None


def field_list_size(ex: H2Exchange) -> int:
    """The request's header-list size as RFC 9113 §6.5.2 counts it (each field's
    name and value, plus 32), the pseudo-header fields counted as the target and
    four fields' overhead."""
    return sum(len(name) + len(value) + 32 for name, value in ex.headers) + len(ex.target) + 4 * 32


def time_requests(h2: H2Socket, now: float, head_timeout: float) -> None:
    """408 for each request the client let stall for
    ``head_timeout``: its body still to come, unanswered, and nothing arrived
    while the client could send (its unread body read, any 100 Continue sent, the
    socket being read).

    Stamps (``H2Exchange.body_since``) are read as endings.sweep reads them. The
    timeout is HTTP/1.1's head timeout, here for every gap in a request's arrival
    (an HTTP/2 head arrives in one piece). A request already answered is not
    timed: it may stream both ways (gRPC, chat).
    """
    reading = h2.reading
    for ex in list(h2.streams.values()):
        since = ex.body_since
        if not since or ex.body_complete or ex.response_started or ex.reset or ex.body_error is not None:
            continue
        if ex.buffered or not reading or (ex.expect_continue and not ex.continue_sent):
            # Waiting on us (its handler to read or say 100 Continue, the socket to
            # be read), not on the client.
            ex.body_since = now
        elif since > 0:
            ex.body_since = -now
        elif now + since >= head_timeout:
            ex.fail_body(ProtocolError(408, "Request Timeout"))
