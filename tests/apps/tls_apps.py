"""Apps that report what the server told them about TLS (tests/process/test_tls.py)."""

from __future__ import annotations

import json
from typing import Any

from blazeasgi import App, Request, Response
from blazeasgi.websocket import WebSocket


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the scope's scheme, its ``tls`` extension and that dict's id."""
    if scope["type"] not in ("http", "websocket"):
        return
    tls = scope["extensions"].get("tls")
    body = json.dumps({"scheme": scope["scheme"], "tls": tls, "tls_id": id(tls)}).encode()
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": body.decode()})
        await send({"type": "websocket.close"})
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


native_app = App()


@native_app.get("/")
def native_index(request: Request) -> Response:
    tls = request.tls
    body = json.dumps({"scheme": request.scheme, "tls": tls, "tls_id": id(tls)}).encode()
    return Response(body, media_type="application/json")


@native_app.websocket("/ws")
async def native_ws(websocket: WebSocket) -> None:
    """Sends its scheme, url and tls facts, then closes."""
    await websocket.accept()
    tls = websocket.tls
    await websocket.send_json({"scheme": websocket.scheme, "url": websocket.url, "tls": tls})
    await websocket.close()
