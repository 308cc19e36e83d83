"""The one ASGI app every attack measurement serves (blazeasgi and uvicorn alike).

* ``/``: ``hello`` (13 bytes), the legitimate client's request;
* ``/slow?ms=N``: answers after N ms (default 500): an in-flight request at SIGTERM;
* ``/endless``: streams 64 KiB chunks forever, counting them: the slow reader's victim.
  ``/count`` reports how many chunks every ``/endless`` produced so far.
"""

from __future__ import annotations

import asyncio
from typing import Any

CHUNK = b"x" * 65536
PRODUCED = [0]
TEXT = [(b"content-type", b"text/plain")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/slow":
        query = scope["query_string"].decode()
        ms = int(query.split("=", 1)[1]) if query.startswith("ms=") else 500
        await asyncio.sleep(ms / 1000)
        body = b"slow"
    elif path == "/endless":
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        while True:
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            PRODUCED[0] += 1
    elif path == "/count":
        body = str(PRODUCED[0]).encode()
    else:
        body = b"Hello, world!"
    headers = [*TEXT, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _native_app() -> Any:
    """The same /endless on blazeasgi's native interface (StreamingResponse)."""
    from blazeasgi import App, Request, Response, StreamingResponse

    native = App()

    @native.get("/")
    def hello(request: Request) -> Response:
        return Response(b"Hello, world!", media_type="text/plain")

    @native.get("/count")
    def count(request: Request) -> Response:
        return Response(str(PRODUCED[0]).encode(), media_type="text/plain")

    @native.get("/endless")
    def endless(request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            while True:
                yield CHUNK
                PRODUCED[0] += 1

        return StreamingResponse(chunks(), media_type="text/plain")

    return native


try:
    native = _native_app()
except ImportError:  # only blazeasgi serves the native app
    native = None
