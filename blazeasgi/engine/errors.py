"""One error family for everything a client can get wrong, carrying the status to send;
and HTTP/2's error codes (RFC 9113 §7), which the HTTP/2 modules share."""

from __future__ import annotations


class ProtocolError(Exception):
    """The client broke HTTP/1.1; answer ``status`` with ``Connection: close``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AppError(RuntimeError):
    """The application broke the server's contract (bad headers, wrong length...)."""


class ClientDisconnected(OSError):
    """Raised by writes after the peer went away (ASGI spec 2.4 wants an OSError)."""


# HTTP/2 error codes (RFC 9113 §7), as RST_STREAM and GOAWAY carry them.
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
REFUSED_STREAM = 0x7
CANCEL = 0x8
ENHANCE_YOUR_CALM = 0xB
