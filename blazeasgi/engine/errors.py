"""One error family for everything a client can get wrong, carrying the status to send."""

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
