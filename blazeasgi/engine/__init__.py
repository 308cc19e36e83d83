"""The one engine both interfaces run on: HTTP/1.1 (connection.py) and HTTP/2
(http2.py), each producing Exchanges.

The contract with the interfaces (blazeasgi/native, blazeasgi/asgi,
blazeasgi/websocket) is ``Exchange`` and its ``ConnectionInfo`` (see
exchange.py for the names an interface may use); nothing else of the engine's
connection is theirs to read.
"""

from .conninfo import ConnectionInfo
from .errors import AppError, ClientDisconnected, ProtocolError
from .exchange import Exchange
from .server import ServedApp, Server, StartupFailed, bind_socket

__all__ = [
    "AppError",
    "ClientDisconnected",
    "ConnectionInfo",
    "Exchange",
    "ProtocolError",
    "ServedApp",
    "Server",
    "StartupFailed",
    "bind_socket",
]
