"""RFC 6455 frames through a kept library, behind one small interface.

A codec turns received bytes into whole messages (``str`` for text, ``bytes`` for
binary) plus bytes to write back (pongs, the close echo), and messages into frames.
Two implementations, chosen by ``Config.ws`` / ``--ws``:

* ``websockets`` (the default when installed): the sans-IO ``websockets.protocol``
  parser. Measured on the dev box (``benchmarks/websocket_echo.py --frames``): 2-4x
  wsproto's messages per second on small frames and ~6x on 64 KiB ones; it rejects
  an oversized frame from its header, before buffering it, and bounds decompressed
  sizes, where wsproto has no message size limit at all.
* ``wsproto``: the fallback when only wsproto is installed (as uvicorn offers both).

Both validate masking, opcodes, reserved bits, control frame rules, close codes and
UTF-8, fragmentation and permessage-deflate (RFC 7692), and close with the code
RFC 6455 names: 1002 protocol error, 1007 invalid UTF-8, 1009 message too big.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

#: Close codes an application may send (RFC 6455 §7.4, 3000-4999 private use).
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})

#: What a codec hands back from ``feed``: messages in order and bytes to write.
Message = str | bytes


class Codec(Protocol):
    """The frame layer of one WebSocket connection (server side)."""

    #: The peer's close frame, or the close this side sent on a protocol error,
    #: once no more frames will be read (``finished``): code and reason.
    close_code: int | None
    close_reason: str
    #: No more frames will be read: the TCP connection should close once the
    #: returned bytes are written.
    finished: bool
    #: The payload of the last pong received (keepalive), or None.
    pong: bytes | None

    def feed(self, data: bytes) -> tuple[list[Message], bytes]: ...

    def encode(self, message: Message) -> bytes: ...

    def ping(self, payload: bytes) -> bytes: ...

    def close(self, code: int, reason: str) -> bytes: ...

    def fail(self, code: int, reason: str) -> bytes: ...


def check_close(code: int, reason: str) -> None:
    """What an application may put in a close frame (raises ValueError)."""
    if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
        raise ValueError(f"invalid WebSocket close code {code!r}")
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("WebSocket close reason is longer than 123 bytes")


# -- websockets ----------------------------------------------------------------------------
# Unmasked frame headers for payloads under 126 bytes: the common case of send().
_TEXT_HEADS = [bytes((0x81, n)) for n in range(126)]
_BINARY_HEADS = [bytes((0x82, n)) for n in range(126)]


def _head(first: int, n: int) -> bytes:
    if n < 65536:
        return struct.pack("!BBH", first, 126, n)
    return struct.pack("!BBQ", first, 127, n)


class WebsocketsCodec:
    """``websockets.protocol.Protocol`` (sans-IO), opened after our own handshake."""

    __slots__ = ("_kind", "_parts", "_proto", "close_code", "close_reason", "finished", "pong")

    def __init__(self, max_size: int, deflate: Any = None) -> None:
        from websockets.protocol import Protocol as WSProtocol
        from websockets.protocol import Side

        self._proto = WSProtocol(Side.SERVER, max_size=max_size or None)
        if deflate is not None:
            self._proto.extensions = [deflate]
        self._parts: list[bytes] | None = None  # fragments of an unfinished message
        self._kind = 1
        self.close_code: int | None = None
        self.close_reason = ""
        self.finished = False
        self.pong: bytes | None = None

    def feed(self, data: bytes) -> tuple[list[Message], bytes]:
        proto = self._proto
        proto.receive_data(data)
        messages: list[Message] = []
        frame: Any  # only Frames once open (Request/Response belong to the handshake)
        for frame in proto.events_received():
            opcode = frame.opcode
            if opcode == 1 or opcode == 2 or opcode == 0:
                payload = frame.data
                if not frame.fin:
                    if opcode != 0:
                        self._kind = opcode
                        self._parts = [bytes(payload)]
                    else:
                        assert self._parts is not None  # the parser checked the sequence
                        self._parts.append(bytes(payload))
                    continue
                if opcode == 0:
                    assert self._parts is not None
                    self._parts.append(bytes(payload))
                    payload = b"".join(self._parts)
                    self._parts = None
                    opcode = self._kind
                if opcode == 1:
                    try:
                        messages.append(str(payload, "utf-8"))
                    except UnicodeDecodeError as exc:
                        proto.fail(1007, f"{exc.reason} at position {exc.start}")
                        break
                else:
                    messages.append(payload if type(payload) is bytes else bytes(payload))
            elif opcode == 10:
                self.pong = bytes(frame.data)
            # PING is answered by the parser itself, CLOSE is read below.
        out = proto.data_to_send()
        if proto.eof_sent:  # close received, or failed: the parser reads no more
            self._finish()
        if not out:
            return messages, b""
        return messages, out[0] if len(out) == 1 else b"".join(out)

    def _finish(self) -> None:
        if self.finished:
            return
        proto = self._proto
        self.finished = True
        close = proto.close_rcvd if proto.parser_exc is None else proto.close_sent
        if close is None:
            close = proto.close_sent
        if close is not None:
            self.close_code, self.close_reason = int(close.code), close.reason
        else:  # pragma: no cover - eof_sent is only set with a close frame here
            self.close_code, self.close_reason = 1006, ""

    def encode(self, message: Message) -> bytes:
        proto = self._proto
        if proto.extensions:
            from websockets.frames import Frame, Opcode

            if isinstance(message, str):
                frame = Frame(Opcode.TEXT, message.encode("utf-8"))
            else:
                frame = Frame(Opcode.BINARY, message)
            return frame.serialize(mask=False, extensions=proto.extensions)
        if type(message) is str:
            data = message.encode("utf-8")
            n = len(data)
            return (_TEXT_HEADS[n] if n < 126 else _head(0x81, n)) + data
        n = len(message)
        return (_BINARY_HEADS[n] if n < 126 else _head(0x82, n)) + message  # type: ignore[operator]

    def ping(self, payload: bytes) -> bytes:
        proto = self._proto
        proto.send_ping(payload)
        return b"".join(proto.data_to_send())

    def close(self, code: int, reason: str) -> bytes:
        proto = self._proto
        from websockets.protocol import State

        if proto.state is not State.OPEN:
            return b""
        proto.send_close(code, reason)
        return b"".join(proto.data_to_send())

    def fail(self, code: int, reason: str) -> bytes:
        """Close without waiting for the peer (keepalive timeout, server error)."""
        proto = self._proto
        proto.fail(code, reason)
        self._finish()
        return b"".join(proto.data_to_send())


# -- wsproto -------------------------------------------------------------------------------
class WsprotoCodec:
    """``wsproto.connection.Connection`` (sans-IO), opened after our own handshake."""

    __slots__ = (
        "_conn",
        "_events",
        "_kind",
        "_max_size",
        "_parts",
        "_size",
        "close_code",
        "close_reason",
        "finished",
        "pong",
    )

    def __init__(self, max_size: int, deflate: Any = None) -> None:
        from wsproto import events
        from wsproto.connection import Connection, ConnectionType

        self._events = events
        self._conn = Connection(ConnectionType.SERVER, extensions=[deflate] if deflate is not None else None)
        self._max_size = max_size or (1 << 62)
        self._parts: list[Any] = []
        self._size = 0
        self._kind: type[Any] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.finished = False
        self.pong: bytes | None = None

    def feed(self, data: bytes) -> tuple[list[Message], bytes]:
        events = self._events
        conn = self._conn
        conn.receive_data(data)
        messages: list[Message] = []
        out: list[bytes] = []
        event: Any
        for event in conn.events():
            kind = type(event)
            if kind is events.TextMessage or kind is events.BytesMessage:
                self._size += len(event.data)
                if self._size > self._max_size:
                    out.append(self.fail(1009, f"message over {self._max_size} bytes"))
                    break
                if event.message_finished and not self._parts:
                    self._size = 0
                    data_ = event.data
                    messages.append(data_ if kind is events.TextMessage else bytes(data_))
                    continue
                self._parts.append(event.data)
                if event.message_finished:
                    joined: Message = (
                        "".join(self._parts) if kind is events.TextMessage else b"".join(self._parts)
                    )
                    messages.append(joined)
                    self._parts = []
                    self._size = 0
            elif kind is events.Ping:
                out.append(conn.send(event.response()))
            elif kind is events.Pong:
                self.pong = bytes(event.payload)
            elif kind is events.CloseConnection:
                self.close_code, self.close_reason = event.code, event.reason or ""
                from wsproto.connection import ConnectionState

                # REMOTE_CLOSING: the peer's close, echoed. OPEN: wsproto found a
                # protocol error (ParseFailed) and reports it as this close: send it.
                if conn.state is ConnectionState.REMOTE_CLOSING or conn.state is ConnectionState.OPEN:
                    out.append(conn.send(event.response()))
                self.finished = True
                break
        return messages, b"".join(out)

    def encode(self, message: Message) -> bytes:
        events = self._events
        if type(message) is str:
            return self._conn.send(events.TextMessage(data=message))
        return self._conn.send(events.BytesMessage(data=message))

    def ping(self, payload: bytes) -> bytes:
        return self._conn.send(self._events.Ping(payload=payload))

    def close(self, code: int, reason: str) -> bytes:
        from wsproto.connection import ConnectionState

        if self._conn.state is not ConnectionState.OPEN:
            return b""
        return self._conn.send(self._events.CloseConnection(code=code, reason=reason or None))

    def fail(self, code: int, reason: str) -> bytes:
        out = self.close(code, reason)
        self.finished = True
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        return out
