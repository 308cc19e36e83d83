"""blazeasgi: one fast HTTP/1.1 engine with a native handler API and an ASGI 3 adapter."""

# First: decides whether the hot modules load compiled, before anything imports them.
from ._compiled import COMPILED
from .config import Config
from .native import (
    App,
    EventSourceResponse,
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
    format_sse,
)
from .websocket import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"

__all__ = [
    "COMPILED",
    "App",
    "Config",
    "EventSourceResponse",
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Request",
    "Response",
    "StreamingResponse",
    "WebSocket",
    "WebSocketDisconnect",
    "format_sse",
]
