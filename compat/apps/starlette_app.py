"""A Starlette application using what Starlette users use."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route

from .common import BIG_TEXT, SSE_EVENTS, data_dir, digest, pattern

DATA = data_dir()
BACKGROUND: list[str] = []


class TeapotError(Exception):
    pass


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan", "started": True}


async def json_view(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world", "unicode": "café ✓", "path": request.url.path})


async def item(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "item_id": request.path_params["item_id"],
            "q": request.query_params.get("q"),
            "all_q": request.query_params.getlist("q"),
            "limit": int(request.query_params.get("limit", "10")),
        }
    )


async def create_item(request: Request) -> JSONResponse:
    try:
        data = await request.json()
    except json.JSONDecodeError:
        return JSONResponse({"detail": "invalid JSON"}, status_code=400)
    if not isinstance(data, dict) or "name" not in data:
        return JSONResponse({"detail": "name is required"}, status_code=422)
    return JSONResponse({"created": data}, status_code=201)


async def form(request: Request) -> JSONResponse:
    async with request.form() as data:
        out: dict[str, Any] = {}
        for key, value in data.multi_items():
            if isinstance(value, str):
                out.setdefault(key, []).append(value)
            else:
                content = await value.read()
                out.setdefault(key, []).append(
                    {"filename": value.filename, "type": value.content_type, **digest(content)}
                )
    return JSONResponse(out)


async def cookies(request: Request) -> JSONResponse:
    response = JSONResponse({"received": dict(request.cookies)})
    response.set_cookie("a", "1")
    response.set_cookie("b", "two words", httponly=True, samesite="strict", max_age=60)
    response.delete_cookie("gone")
    return response


async def redirect(request: Request) -> RedirectResponse:
    target = request.query_params.get("to", "/json")
    return RedirectResponse(target, status_code=int(request.query_params.get("status", "307")))


async def teapot(request: Request) -> Response:
    raise TeapotError


async def missing(request: Request) -> Response:
    raise HTTPException(404, "no such thing", headers={"x-reason": "missing"})


async def crash(request: Request) -> Response:
    raise RuntimeError("unhandled")


async def big(request: Request) -> PlainTextResponse:
    return PlainTextResponse(BIG_TEXT)


async def numbers() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0)
        yield b"chunk %d\n" % i


async def stream(request: Request) -> StreamingResponse:
    return StreamingResponse(numbers(), media_type="text/plain")


async def events() -> AsyncIterator[str]:
    for event in SSE_EVENTS:
        yield event
        await asyncio.sleep(0.01)


async def sse(request: Request) -> StreamingResponse:
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def file(request: Request) -> FileResponse:
    return FileResponse(DATA / "data.bin", filename="data.bin")


async def record(value: str) -> None:
    await asyncio.sleep(0)
    BACKGROUND.append(value)


async def background(request: Request) -> PlainTextResponse:
    value = request.query_params.get("value", "ran")
    return PlainTextResponse("scheduled", background=BackgroundTask(record, value))


async def background_result(request: Request) -> JSONResponse:
    return JSONResponse(BACKGROUND)


async def state(request: Request) -> JSONResponse:
    return JSONResponse({"greeting": request.state.greeting, "started": request.state.started})


async def body(request: Request) -> JSONResponse:
    return JSONResponse(digest(await request.body()))


async def stream_body(request: Request) -> JSONResponse:
    parts = 0
    data = b""
    async for chunk in request.stream():
        parts += 1
        data += chunk
    return JSONResponse(digest(data))


async def download(request: Request) -> Response:
    return Response(
        pattern(int(request.query_params.get("size", "1048576"))), media_type="application/octet-stream"
    )


async def headers(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "headers": [[k, v] for k, v in request.headers.items() if k not in ("host", "user-agent")],
            "client": request.client.host if request.client else None,
            "scheme": request.url.scheme,
            "url": str(request.url),
            "http_version": request.scope["http_version"],
        }
    )


async def path_echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "name": request.path_params["name"],
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.url.query,
        }
    )


async def session_set(request: Request) -> JSONResponse:
    request.session["value"] = request.query_params.get("value", "")
    return JSONResponse({"stored": request.session["value"]})


async def session_get(request: Request) -> JSONResponse:
    return JSONResponse({"value": request.session.get("value")})


async def status(request: Request) -> Response:
    code = request.path_params["code"]
    return Response(b"" if code in (204, 304) else b"status body", status_code=code)


async def sub(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "root_path": request.scope["root_path"]})


async def teapot_handler(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "teapot", "path": request.url.path}, status_code=418)


app = Starlette(
    routes=[
        Route("/json", json_view),
        Route("/items/{item_id:int}", item),
        Route("/items", create_item, methods=["POST"]),
        Route("/form", form, methods=["POST"]),
        Route("/upload", form, methods=["POST"]),
        Route("/cookies", cookies),
        Route("/redirect", redirect),
        Route("/teapot", teapot),
        Route("/missing", missing),
        Route("/crash", crash),
        Route("/big", big),
        Route("/stream", stream),
        Route("/sse", sse),
        Route("/file", file, methods=["GET", "HEAD"]),
        Route("/background", background),
        Route("/background/result", background_result),
        Route("/state", state),
        Route("/body", body, methods=["POST", "PUT"]),
        Route("/stream-body", stream_body, methods=["POST"]),
        Route("/download", download),
        Route("/headers", headers, methods=["GET", "POST"]),
        Route("/paths/{name:path}", path_echo),
        Route("/session/set", session_set),
        Route("/session/get", session_get),
        Route("/status/{code:int}", status),
        Mount("/sub", routes=[Route("/inner", sub)]),
    ],
    middleware=[
        Middleware(
            CORSMiddleware,
            allow_origins=["https://example.com"],
            allow_methods=["GET", "POST"],
            allow_headers=["x-token"],
            expose_headers=["x-reason"],
            allow_credentials=True,
        ),
        Middleware(GZipMiddleware, minimum_size=1000),
        Middleware(SessionMiddleware, secret_key="compat-secret"),
    ],
    exception_handlers={TeapotError: teapot_handler},
    lifespan=lifespan,
)
