"""The native handler API: routes answered without ASGI's per-message overhead."""

from .app import App, to_response
from .datastructures import Headers, QueryParams
from .request import Request
from .responses import (
    EventSourceResponse,
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
    format_sse,
)

__all__ = [
    "App",
    "EventSourceResponse",
    "FileResponse",
    "HTMLResponse",
    "Headers",
    "JSONResponse",
    "PlainTextResponse",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "Response",
    "StreamingResponse",
    "format_sse",
    "to_response",
]
