"""One error family for everything a client can get wrong, carrying the status to send;
the log lines of a handler that failed, in the same words for both protocols; and
HTTP/2's error codes (RFC 9113 §7), which the HTTP/2 modules share."""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger("blazeasgi.error")


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


def log_failure(method: str, target: bytes, exc: BaseException, client_gone: bool) -> None:
    """The handler of ``method`` ``target`` raised ``exc``: a cancel in one line,
    anything else with its traceback; nothing for a ClientDisconnected the client
    caused (``client_gone``: it left, or broke its body)."""
    if isinstance(exc, ClientDisconnected) and client_gone:
        return
    if isinstance(exc, asyncio.CancelledError):
        logger.error("Handler for %s %s was cancelled", method, target.decode("latin-1"))
    else:
        logger.error("Exception in handler for %s %s", method, target.decode("latin-1"), exc_info=exc)


def log_unfinished(method: str, target: bytes, started: bool) -> None:
    """The handler returned without a response (``started`` False), or before the
    response body it started ended."""
    what = "before the response body ended" if started else "without a response"
    logger.error("Handler for %s %s returned %s", method, target.decode("latin-1"), what)


# HTTP/2 error codes (RFC 9113 §7), as RST_STREAM and GOAWAY carry them.
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
REFUSED_STREAM = 0x7
CANCEL = 0x8
ENHANCE_YOUR_CALM = 0xB
