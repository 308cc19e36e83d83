"""Applications the CLI tests serve in a subprocess."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from blazeasgi import App, Request, Response

NOT_CALLABLE = 42


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_asgi(kind: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["path"].endswith("/slow"):
            await asyncio.sleep(0.5)
        body = json.dumps({"kind": kind, "path": scope["path"], "root_path": scope["root_path"]}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


app = make_asgi("asgi")


def create_app() -> Any:
    return make_asgi("factory")


def bad_factory() -> Any:
    raise RuntimeError("factory exploded")


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "db unreachable"})
        return
    raise AssertionError("must not serve")


native = App()


@native.get("/")
def hello(request: Request) -> Response:
    return Response(b"native hello", media_type="text/plain")


async def scope_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the client address and scheme the server put in the scope."""
    if scope["type"] != "http":
        return
    import json

    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]}).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})
