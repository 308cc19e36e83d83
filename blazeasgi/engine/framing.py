"""Request-framing checks off the hot path, without I/O (sans-IO).

What the connection (connection.py) calls only for an unusual request: Host and
Transfer-Encoding syntax, the non-origin request-target forms, methods outside
the common ones, the mapping of httptools' errors to HTTP statuses, and the
reader of an upgrade request's body. Nothing here touches a socket or the loop.

The public names here are engine-internal: connection.py's interface to these
checks, not part of the contract the interfaces (native/, asgi/, websocket/) see.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httptools

from .errors import ProtocolError

if TYPE_CHECKING:
    from .connection import HTTPConnection
    from .exchange import Exchange

#: Host values already found valid (RFC 9110 §7.2): one set lookup spares a repeated
#: value the syntax check. Bounded: cleared when full.
VALID_HOSTS: set[bytes] = set()
_VALID_HOSTS_MAX = 1024
#: uri-host [ ":" port ] (RFC 3986 §3.2.2-3): IP-literal, or a reg-name (which
#: covers IPv4address) of unreserved, pct-encoded and sub-delims characters.
_HOST_SYNTAX = re.compile(
    rb"(?:\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[-A-Za-z0-9._~!$&'()*+,;=:]+)\]"
    rb"|(?:[-A-Za-z0-9._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)"
    rb"(?::[0-9]*)?\Z"
)


class UpgradeBody:
    """The body of a request asking for an Upgrade, read in place of the parser.

    httptools has llhttp skip such a body (it assumes the next bytes belong to the
    new protocol), so this reads it with the request's own framing and hands it to
    the connection's body callbacks. ``feed_data`` raises ``HttpParserUpgrade`` with
    the offset where the body ended, like the parser at an upgrade: the connection
    then goes on as after an upgrade without a body.
    """

    __slots__ = ("conn", "done", "parser", "primed", "remaining")

    def __init__(self, conn: HTTPConnection, content_length: int) -> None:
        self.conn = conn
        self.done = False
        #: Content-Length bytes still to come, or -1 for chunked (the parser reads it).
        self.remaining = content_length
        self.parser: httptools.HttpRequestParser | None = None
        #: The parser has read the primer head: header fields from here on are trailers.
        self.primed = False
        if content_length < 0:
            self.parser = httptools.HttpRequestParser(self)
            self.parser.feed_data(b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
        self.primed = True

    @classmethod
    def for_request(cls, conn: HTTPConnection, ex: Exchange) -> UpgradeBody | None:
        """A reader for ``ex``'s body, None if it has none (its head was accepted:
        one valid framing field at most, chunked the only coding)."""
        for name, value in ex.headers:
            if name == b"transfer-encoding":
                return cls(conn, -1)
            if name == b"content-length" and int(value) > 0:
                return cls(conn, int(value))
        return None

    # -- parser callbacks (chunked) ---------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.primed:  # a trailer field, not the primer head's
            self.conn.on_header(name, value)

    def on_body(self, body: bytes) -> None:
        self.conn.on_body(body)

    def on_message_complete(self) -> None:
        self.done = True

    # -- fed by HTTPConnection.data_received --------------------------------------------
    def feed_data(self, data: bytes) -> None:
        end = self._take(data)
        if end >= 0:
            self.conn.on_message_complete()
            raise httptools.HttpParserUpgrade(end)

    def _take(self, data: bytes) -> int:
        """Feed ``data``; the offset just after the body, or -1 if it has not ended."""
        parser = self.parser
        if parser is None:
            n = min(self.remaining, len(data))
            if n:
                self.conn.on_body(data[:n])
                self.remaining -= n
            return n if self.remaining == 0 else -1
        # A chunked body ends with a line: fed line by line, it ends at a piece's end.
        start = 0
        while start < len(data):
            end = data.find(b"\n", start) + 1 or len(data)
            parser.feed_data(data[start:end])
            if self.done:
                return end
            start = end
        return -1


def non_origin_target(method: str, target: bytes) -> tuple[bytes, bytes | None]:
    """(origin-form target, authority) for the other forms of RFC 9112 §3.2.

    Absolute-form is reduced to its path and query, its authority returned so it
    replaces Host; ``*`` is kept for OPTIONS and authority-form for CONNECT.
    """
    if target == b"*" and method == "OPTIONS":
        return target, None
    if method == "CONNECT":
        return target, None
    lower = target[:8].lower()
    if lower.startswith(b"http://") or lower.startswith(b"https://"):
        rest = target.split(b"://", 1)[1]
        end = len(rest)
        for sep in (b"/", b"?", b"#"):
            i = rest.find(sep)
            if 0 <= i < end:
                end = i
        authority, path = rest[:end], rest[end:]
        if b"@" in authority or not authority:
            raise ProtocolError(400, "Invalid request target")
        if not path.startswith(b"/"):
            path = b"/" + path
        return path, authority
    raise ProtocolError(400, "Invalid request target")


def check_host(value: bytes) -> None:
    """Host syntax (RFC 9110 §7.2, RFC 3986 §3.2.2): 400 for an invalid value (cold)."""
    if _HOST_SYNTAX.match(value) is None:
        raise ProtocolError(400, "Invalid Host")
    if len(VALID_HOSTS) >= _VALID_HOSTS_MAX:
        VALID_HOSTS.clear()
    VALID_HOSTS.add(value)


def check_codings(value: bytes) -> None:
    """A request's Transfer-Encoding list (RFC 9112 §6.1, §6.3, §7): chunked last and
    once, no empty element (strict: in the field that frames the body an odd list is
    what smuggling tries), and no other coding (not implemented: 501)."""
    codings = [c.strip().lower() for c in value.split(b",")]
    if b"" in codings:
        raise ProtocolError(400, "Empty element in Transfer-Encoding")
    if codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
        raise ProtocolError(400, "Transfer-Encoding must end in chunked, applied once")
    if len(codings) != 1:
        raise ProtocolError(501, "Unsupported transfer coding")


def rare_method(raw_method: bytes, target: bytes) -> str:
    """The name of a method outside _METHODS; CONNECT's target checked (cold)."""
    method = raw_method.decode("ascii")
    if method == "CONNECT":
        # RFC 9112 §3.2.3: authority-form only, uri-host ":" port.
        host, colon, port = target.rpartition(b":")
        if not colon or not port or not host or target[0] == 47 or _HOST_SYNTAX.match(target) is None:
            raise ProtocolError(400, "CONNECT needs an authority-form target")
    return method


def as_protocol_error(exc: httptools.HttpParserError) -> ProtocolError:
    cause = exc.__context__
    if isinstance(cause, ProtocolError):
        return cause
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        return ProtocolError(400, "Invalid HTTP method")
    message = str(exc.args[0]) if exc.args else "Bad Request"
    if message == "Invalid HTTP version":  # well-formed digits, e.g. HTTP/1.2, HTTP/3.0
        return ProtocolError(505, "HTTP Version Not Supported")
    if "transfer-encoding" in message.lower() and "invalid" in message.lower():
        return ProtocolError(400, "Invalid Transfer-Encoding")
    return ProtocolError(400, f"Invalid HTTP request: {message}")
