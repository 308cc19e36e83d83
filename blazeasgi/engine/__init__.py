"""The one HTTP/1.1 engine both interfaces run on."""

from .errors import AppError, ClientDisconnected, ProtocolError
from .exchange import Exchange
from .server import ServedApp, Server, StartupFailed, bind_socket

__all__ = [
    "AppError",
    "ClientDisconnected",
    "Exchange",
    "ProtocolError",
    "ServedApp",
    "Server",
    "StartupFailed",
    "bind_socket",
]
