"""Apps that answer with what they were told about the client (tests/engine/test_proxy_headers.py)."""

from __future__ import annotations

import json
from typing import Any

from blazeasgi import App, Request
from blazeasgi.websocket import WebSocket

#: What asgi_seen saw of each WebSocket scope.
websocket_scopes: list[dict[str, Any]] = []


async def asgi_seen(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """JSON of the scope's client, scheme and Host; a WebSocket scope is refused
    (403) after recording the same in ``websocket_scopes``."""
    if scope["type"] not in ("http", "websocket"):
        return  # no lifespan to run
    host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), None)
    client = list(scope["client"]) if scope["client"] else None  # as JSON shows it
    seen = {"client": client, "scheme": scope["scheme"], "host": host}
    if scope["type"] == "websocket":
        websocket_scopes.append(seen)
        await receive()
        await send({"type": "websocket.close"})
        return
    body = json.dumps(seen).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def native_seen() -> App:
    """A native App answering with its Request's client, scheme, host and url."""
    app = App()

    @app.get("/{path:path}")
    def seen(request: Request) -> dict[str, Any]:
        return {"client": request.client, "scheme": request.scheme, "host": request.host, "url": request.url}

    @app.websocket("/ws")
    def refuse(websocket: WebSocket) -> None:
        """Records what asgi_seen records; returning without accepting refuses (403)."""
        client = list(websocket.client) if websocket.client else None
        seen = {"client": client, "scheme": websocket.scheme, "host": websocket.headers.get("host")}
        websocket_scopes.append(seen)

    @app.websocket("/ws-view")
    def view(websocket: WebSocket) -> None:
        """The connection view a native WebSocket shares with Request; refuses (403)."""
        client = list(websocket.client) if websocket.client else None
        seen = {"client": client, "scheme": websocket.scheme, "host": websocket.host, "url": websocket.url}
        websocket_scopes.append({**seen, "tls": websocket.tls, "again": [websocket.host, websocket.scheme]})

    return app


native = native_seen()
