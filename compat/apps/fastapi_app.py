"""A FastAPI application using what FastAPI users use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import (
    BackgroundTasks,
    Cookie,
    FastAPI,
    File,
    Form,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    UploadFile,
)
from fastapi import Response as FastAPIResponse
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from pydantic import BaseModel, Field
from starlette.middleware.sessions import SessionMiddleware

from .common import BIG_TEXT, SSE_EVENTS, data_dir, digest, pattern

DATA = data_dir()
BACKGROUND: list[str] = []


class TeapotError(Exception):
    pass


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan", "started": True}


app = FastAPI(lifespan=lifespan)
app.add_middleware(SessionMiddleware, secret_key="compat-secret")
app.add_middleware(GZipMiddleware, minimum_size=1000)
app.add_middleware(
    CORSMiddleware,
    allow_origins=["https://example.com"],
    allow_methods=["GET", "POST"],
    allow_headers=["x-token"],
    expose_headers=["x-reason"],
    allow_credentials=True,
)


@app.exception_handler(TeapotError)
async def teapot_handler(request: Request, exc: TeapotError) -> JSONResponse:
    return JSONResponse({"error": "teapot", "path": request.url.path}, status_code=418)


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


@app.get("/json")
async def json_view(request: Request) -> dict[str, Any]:
    return {"hello": "world", "unicode": "café ✓", "path": request.url.path}


@app.get("/items/{item_id}")
async def item(
    item_id: int, q: Annotated[list[str] | None, Query()] = None, limit: Annotated[int, Query(le=100)] = 10
) -> dict[str, Any]:
    return {"item_id": item_id, "q": q[0] if q else None, "all_q": q or [], "limit": limit}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> dict[str, Any]:
    return {"created": item.model_dump()}


@app.get("/sync-items/{item_id}")
def sync_item(item_id: int, x_token: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    return {"item_id": item_id, "x_token": x_token}


@app.post("/form")
async def form(
    name: Annotated[str, Form()], tags: Annotated[list[str], Form()], note: Annotated[str, Form()] = "none"
) -> dict[str, Any]:
    return {"name": name, "tags": tags, "note": note}


@app.post("/upload")
async def upload(name: Annotated[str, Form()], files: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
    out = []
    for f in files:
        out.append({"filename": f.filename, "type": f.content_type, **digest(await f.read())})
    return {"name": name, "files": out}


@app.get("/cookies")
async def cookies(
    response: FastAPIResponse,
    a: Annotated[str | None, Cookie()] = None,
    b: Annotated[str | None, Cookie()] = None,
) -> dict[str, Any]:
    response.set_cookie("a", "1")
    response.set_cookie("b", "two words", httponly=True, samesite="strict", max_age=60)
    response.delete_cookie("gone")
    return {"received": {"a": a, "b": b}}


@app.get("/redirect")
async def redirect(to: str = "/json", status: int = 307) -> RedirectResponse:
    return RedirectResponse(to, status_code=status)


@app.get("/teapot")
async def teapot() -> None:
    raise TeapotError


@app.get("/missing")
async def missing() -> None:
    raise HTTPException(404, "no such thing", headers={"x-reason": "missing"})


@app.get("/crash")
async def crash() -> None:
    raise RuntimeError("unhandled")


@app.get("/sync-crash")
def sync_crash() -> None:
    raise RuntimeError("unhandled in a thread")


@app.get("/big")
async def big() -> PlainTextResponse:
    return PlainTextResponse(BIG_TEXT)


async def numbers() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0)
        yield b"chunk %d\n" % i


@app.get("/stream")
async def stream() -> StreamingResponse:
    return StreamingResponse(numbers(), media_type="text/plain")


async def events() -> AsyncIterator[str]:
    for event in SSE_EVENTS:
        yield event
        await asyncio.sleep(0.01)


@app.get("/sse")
async def sse() -> StreamingResponse:
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@app.api_route("/file", methods=["GET", "HEAD"])
async def file() -> FileResponse:
    return FileResponse(DATA / "data.bin", filename="data.bin")


async def record(value: str) -> None:
    await asyncio.sleep(0)
    BACKGROUND.append(value)


@app.get("/background")
async def background(tasks: BackgroundTasks, value: str = "ran") -> PlainTextResponse:
    tasks.add_task(record, value)
    return PlainTextResponse("scheduled")


@app.get("/background/result")
async def background_result() -> list[str]:
    return BACKGROUND


@app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return {"greeting": request.state.greeting, "started": request.state.started}


@app.api_route("/body", methods=["POST", "PUT"])
async def body(request: Request) -> dict[str, Any]:
    return digest(await request.body())


@app.post("/stream-body")
async def stream_body(request: Request) -> dict[str, Any]:
    data = b""
    async for chunk in request.stream():
        data += chunk
    return digest(data)


@app.get("/download")
async def download(size: int = 1 << 20) -> Response:
    return Response(pattern(size), media_type="application/octet-stream")


@app.api_route("/headers", methods=["GET", "POST"])
async def headers(request: Request) -> dict[str, Any]:
    return {
        "headers": [[k, v] for k, v in request.headers.items() if k not in ("host", "user-agent")],
        "client": request.client.host if request.client else None,
        "scheme": request.url.scheme,
        "url": str(request.url),
        "http_version": request.scope["http_version"],
    }


@app.get("/paths/{name:path}")
async def path_echo(request: Request, name: Annotated[str, Path()]) -> dict[str, Any]:
    return {
        "name": name,
        "path": request.url.path,
        "raw_path": request.scope["raw_path"].decode("latin-1"),
        "query": request.url.query,
    }


@app.get("/session/set")
async def session_set(request: Request, value: str = "") -> dict[str, Any]:
    request.session["value"] = value
    return {"stored": value}


@app.get("/session/get")
async def session_get(request: Request) -> dict[str, Any]:
    return {"value": request.session.get("value")}


@app.get("/status/{code}")
async def status(code: int) -> Response:
    return Response(b"" if code in (204, 304) else b"status body", status_code=code)
