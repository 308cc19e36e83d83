"""Apps for tests/http2/test_http2.py: what the stream's handler saw, and how it behaves.

``SEEN`` is written by the server thread's handlers and read by the tests: the
bytes a streaming handler got past ``send`` (what the server let it write), and
whether a handler saw its client go away.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from fastapi.responses import StreamingResponse

from blazeasgi import App, Request, Response

SEEN: dict[str, Any] = {}
CHUNK = 65536


async def body_size(receive: Any) -> int:
    """Read the request body to its end (or a disconnect); its size."""
    size = 0
    more = True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    return size


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
    if path == "/":
        info = {
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "method": scope["method"],
            "path": path,
            "query_string": scope["query_string"].decode(),
            "host": dict(scope["headers"]).get(b"host", b"").decode(),
            "tls": "tls" in scope["extensions"],
        }
        await send({**start, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(info).encode()})
    elif path == "/echo":  # each request chunk back as it arrives
        await send(start)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                SEEN["echo_disconnect"] = True
                return
            await send({"type": "http.response.body", "body": message["body"], "more_body": True})
            if not message.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b""})
    elif path == "/count":  # the request body's size
        size = await body_size(receive)
        await send(start)
        await send({"type": "http.response.body", "body": str(size).encode()})
    elif path == "/stream":  # n chunks of 64 KiB; SEEN["sent"]: bytes send() took
        SEEN["sent"] = 0
        await send(start)
        try:
            for _ in range(int(query.get("n", "16"))):
                await send({"type": "http.response.body", "body": b"x" * CHUNK, "more_body": True})
                SEEN["sent"] += CHUNK
        except OSError:
            SEEN["send_failed"] = True
            raise
        await send({"type": "http.response.body", "body": b""})
    elif path == "/read-later":  # reads nothing until SEEN["read"], then counts the body
        while not SEEN.get("read"):
            await asyncio.sleep(0.01)
        size = await body_size(receive)
        await send(start)
        await send({"type": "http.response.body", "body": str(size).encode()})
    elif path == "/wait-disconnect":
        await send(start)
        await send({"type": "http.response.body", "body": b"waiting", "more_body": True})
        message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        SEEN["disconnected"] = True
    elif path == "/fail-before":
        raise RuntimeError("handler failed before responding")
    elif path == "/fail-after":
        await send(start)
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("handler failed mid-body")
    elif path == "/slow":
        await asyncio.sleep(float(query.get("s", "0.5")))
        await send(start)
        await send({"type": "http.response.body", "body": b"done"})
    elif path == "/hints":
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]})
        await send(start)
        await send({"type": "http.response.body", "body": b"hinted"})
    elif path == "/trailers":
        await send({**start, "trailers": True})
        await send({"type": "http.response.body", "body": b"body", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})
    else:
        await send({**start, "status": 404})
        await send({"type": "http.response.body", "body": b"not found"})


native_app = App()


@native_app.get("/")
def native_index(request: Request) -> Response:
    return Response(f"native {request.http_version} {request.method}".encode(), media_type="text/plain")


@native_app.post("/upload")
async def native_upload(request: Request) -> Response:
    body = await request.body()
    return Response(str(len(body)).encode(), media_type="text/plain")


fastapi_app = FastAPI()


@fastapi_app.get("/items/{item_id}")
async def get_item(item_id: int, q: str | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "q": q}


@fastapi_app.post("/echo")
async def fastapi_echo(request: FastAPIRequest) -> dict[str, Any]:
    body = await request.body()
    return {"size": len(body), "http_version": request.scope["http_version"]}


@fastapi_app.get("/stream")
async def fastapi_stream() -> StreamingResponse:
    async def chunks() -> Any:
        for i in range(5):
            yield f"chunk {i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")
