"""WebSockets (RFC 6455) on the engine's protocol switch, for both interfaces;
over HTTP/2 (RFC 8441) the switch hands over a stream instead of the socket
(engine/h2tunnel.py) and the same code runs.

* ``asgi``: the ASGI ``websocket`` scope and events, used by ``ASGIAdapter``;
* ``native``: ``WebSocket`` for ``@app.websocket(path)`` handlers;
* ``connection``: the asyncio Protocol an accepted socket is handed to (queues,
  backpressure, close handshake, keepalive, graceful shutdown);
* ``handshake``: the opening handshake and permessage-deflate negotiation;
* ``codec``: frames through the ``websockets`` sans-IO library (or ``wsproto``).
"""

from .native import WebSocket, WebSocketDisconnect

__all__ = ["WebSocket", "WebSocketDisconnect"]
