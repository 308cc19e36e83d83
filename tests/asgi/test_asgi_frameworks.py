"""Starlette and FastAPI applications served by blazeasgi, seen from an HTTP client."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, File, Form, HTTPException, UploadFile
from fastapi import Request as FastAPIRequest
from fastapi import Response as FastAPIResponse
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
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

THIS_FILE = Path(__file__)
ORIGIN = "https://example.com"
BIG_TEXT = "blazeasgi " * 1000
BODY_2MB = bytes(range(256)) * 8192


class TeapotError(Exception):
    pass


class Background:
    """Lets a test hold a background task until it has seen the response."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.done = threading.Event()
        self.ran_with: list[str] = []

    async def task(self, value: str) -> None:
        await anyio.to_thread.run_sync(self.gate.wait, 5)
        self.ran_with.append(value)
        self.done.set()


BG = Background()


async def teapot_handler(request: Any, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "teapot", "path": request.url.path}, status_code=418)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan"}


async def numbers() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0)
        yield b"chunk %d\n" % i


STREAM_CLOSED = threading.Event()


async def endless() -> AsyncIterator[bytes]:
    try:
        while True:
            yield b"tick\n" * 100
            await asyncio.sleep(0.01)
    finally:
        STREAM_CLOSED.set()


def sync_numbers() -> Iterator[str]:
    for i in range(3):
        yield f"sync {i} {threading.current_thread() is threading.main_thread()}\n"


def middleware() -> list[Middleware]:
    return [
        Middleware(
            CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["GET", "POST"], allow_headers=["x-token"]
        ),
        Middleware(GZipMiddleware, minimum_size=500),
    ]


# -- Starlette -----------------------------------------------------------------------------
async def s_json(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world", "path": request.url.path})


async def s_user(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "user_id": request.path_params["user_id"],
            "q": request.query_params.getlist("q"),
            "url": str(request.url_for("user", user_id=7)),
        }
    )


async def s_form(request: Request) -> JSONResponse:
    async with request.form() as form:
        out: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                out[key] = value
            else:
                out[key] = {"filename": value.filename, "content": (await value.read()).decode()}
    return JSONResponse(out)


async def s_cookies(request: Request) -> JSONResponse:
    response = JSONResponse({"received": dict(request.cookies)})
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True, path="/")
    return response


async def s_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("/json")


async def s_teapot(request: Request) -> Response:
    raise TeapotError


async def s_missing(request: Request) -> Response:
    raise StarletteHTTPException(404, "no such thing")


async def s_crash(request: Request) -> Response:
    raise RuntimeError("unhandled")


async def s_stream(request: Request) -> StreamingResponse:
    return StreamingResponse(numbers(), media_type="text/plain")


async def s_endless(request: Request) -> StreamingResponse:
    return StreamingResponse(endless(), media_type="text/plain")


async def s_sync_stream(request: Request) -> StreamingResponse:
    return StreamingResponse(sync_numbers(), media_type="text/plain")


async def s_file(request: Request) -> FileResponse:
    return FileResponse(THIS_FILE, media_type="text/x-python")


async def s_body(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"length": len(body), "sha256": hashlib.sha256(body).hexdigest()})


async def s_background(request: Request) -> PlainTextResponse:
    return PlainTextResponse("sent", background=BackgroundTask(BG.task, "starlette"))


async def s_state(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.greeting)


async def s_big(request: Request) -> PlainTextResponse:
    return PlainTextResponse(BIG_TEXT)


async def s_disconnected(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(await request.is_disconnected()))


async def s_sub(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "root_path": request.scope["root_path"]})


starlette_app = Starlette(
    routes=[
        Route("/json", s_json),
        Route("/users/{user_id:int}", s_user, name="user"),
        Route("/form", s_form, methods=["POST"]),
        Route("/cookies", s_cookies),
        Route("/redirect", s_redirect),
        Route("/teapot", s_teapot),
        Route("/missing", s_missing),
        Route("/crash", s_crash),
        Route("/stream", s_stream),
        Route("/sync-stream", s_sync_stream),
        Route("/endless", s_endless),
        Route("/file", s_file, methods=["GET", "HEAD"]),
        Route("/body", s_body, methods=["POST"]),
        Route("/background", s_background),
        Route("/state", s_state),
        Route("/big", s_big),
        Route("/disconnected", s_disconnected),
        Mount("/sub", routes=[Route("/inner", s_sub)]),
    ],
    middleware=middleware(),
    exception_handlers={TeapotError: teapot_handler},
    lifespan=lifespan,
)


# -- FastAPI -------------------------------------------------------------------------------
fastapi_app = FastAPI(lifespan=lifespan, middleware=middleware())
fastapi_app.add_exception_handler(TeapotError, teapot_handler)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@fastapi_app.get("/json")
async def f_json(request: FastAPIRequest) -> dict[str, Any]:
    return {"hello": "world", "path": request.url.path}


@fastapi_app.get("/items/{item_id}")
async def f_item(item_id: int, q: str | None = None, limit: int = 10) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "limit": limit}


@fastapi_app.post("/items", status_code=201)
async def f_create(item: Item) -> dict[str, Any]:
    return {"created": item.model_dump()}


@fastapi_app.get("/sync")
def f_sync() -> dict[str, Any]:
    return {"thread": threading.current_thread().name}


@fastapi_app.get("/async")
async def f_async() -> dict[str, Any]:
    return {"thread": threading.current_thread().name}


@fastapi_app.post("/form")
async def f_form(name: Annotated[str, Form()], extra: Annotated[str, Form()] = "none") -> dict[str, Any]:
    return {"name": name, "extra": extra}


@fastapi_app.post("/upload")
async def f_upload(
    name: Annotated[str, Form()], files: Annotated[list[UploadFile], File()]
) -> dict[str, Any]:
    return {
        "name": name,
        "files": [{"filename": f.filename, "content": (await f.read()).decode()} for f in files],
    }


@fastapi_app.get("/cookies")
async def f_cookies(request: FastAPIRequest, response: FastAPIResponse) -> dict[str, Any]:
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return {"received": dict(request.cookies)}


@fastapi_app.get("/redirect")
async def f_redirect() -> RedirectResponse:
    return RedirectResponse("/json")


@fastapi_app.get("/teapot")
async def f_teapot() -> None:
    raise TeapotError


@fastapi_app.get("/missing")
async def f_missing() -> None:
    raise HTTPException(404, "no such thing")


@fastapi_app.get("/crash")
async def f_crash() -> None:
    raise RuntimeError("unhandled")


@fastapi_app.get("/stream")
async def f_stream() -> StreamingResponse:
    return StreamingResponse(numbers(), media_type="text/plain")


@fastapi_app.get("/sync-stream")
def f_sync_stream() -> StreamingResponse:
    return StreamingResponse(sync_numbers(), media_type="text/plain")


@fastapi_app.post("/body")
async def f_body(request: FastAPIRequest) -> dict[str, Any]:
    body = await request.body()
    return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


@fastapi_app.get("/background")
async def f_background(tasks: BackgroundTasks) -> PlainTextResponse:
    tasks.add_task(BG.task, "fastapi")
    return PlainTextResponse("sent")


@fastapi_app.get("/state")
async def f_state(request: FastAPIRequest) -> PlainTextResponse:
    return PlainTextResponse(request.state.greeting)


@fastapi_app.get("/big")
async def f_big() -> PlainTextResponse:
    return PlainTextResponse(BIG_TEXT)


APPS = {"starlette": starlette_app, "fastapi": fastapi_app}


@pytest.fixture(params=list(APPS))
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(serve, framework: str) -> Iterator[httpx.Client]:
    srv = serve(APPS[framework])
    with httpx.Client(base_url=srv.url(), timeout=5) as c:
        yield c


def without_volatile(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.multi_items() if k not in ("date", "server")]


# -- shared behaviour ------------------------------------------------------------------------
def test_json_route(client: httpx.Client) -> None:
    r = client.get("/json")
    assert r.status_code == 200
    assert r.json() == {"hello": "world", "path": "/json"}
    assert sorted(without_volatile(r.headers)) == [
        ("content-length", str(len(r.content))),
        ("content-type", "application/json"),
        ("vary", "Origin"),  # CORS middleware
    ]
    assert r.headers["server"] == "blazeasgi"
    assert "date" in r.headers


def test_keep_alive_across_many_requests(client: httpx.Client, serve) -> None:
    for i in range(20):
        assert client.get("/json").status_code == 200, i
    assert client.get("/state").text == "hello from lifespan"


def test_not_found_and_method_not_allowed(client: httpx.Client, framework: str) -> None:
    r = client.get("/nope")
    assert r.status_code == 404
    r = client.delete("/json")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]


def test_form_urlencoded(client: httpx.Client, framework: str) -> None:
    r = client.post("/form", data={"name": "bob smith", "extra": "é&="})
    assert r.status_code == 200
    assert r.json() == {"name": "bob smith", "extra": "é&="}


def test_cookies(client: httpx.Client) -> None:
    r = client.get("/cookies", headers={"cookie": "x=1; y=two"})
    assert r.status_code == 200
    assert r.json() == {"received": {"x": "1", "y": "two"}}
    set_cookies = r.headers.get_list("set-cookie")
    assert len(set_cookies) == 2
    assert set_cookies[0].startswith("a=1;")
    assert set_cookies[1].startswith("b=2;")
    assert "HttpOnly" in set_cookies[1]
    assert client.cookies["a"] == "1"
    assert client.cookies["b"] == "2"


def test_redirect(client: httpx.Client) -> None:
    r = client.get("/redirect")
    assert r.status_code == 307
    assert r.headers["location"] == "/json"
    r = client.get("/redirect", follow_redirects=True)
    assert r.status_code == 200
    assert r.json()["path"] == "/json"


def test_exception_handlers(client: httpx.Client, framework: str) -> None:
    r = client.get("/teapot")
    assert r.status_code == 418
    assert r.json() == {"error": "teapot", "path": "/teapot"}
    r = client.get("/missing")
    assert r.status_code == 404
    if framework == "fastapi":
        assert r.json() == {"detail": "no such thing"}
    else:
        assert r.text == "no such thing"
    assert client.get("/json").status_code == 200  # connection still fine


def test_unhandled_exception_is_500(client: httpx.Client) -> None:
    r = client.get("/crash")
    assert r.status_code == 500
    assert r.text == "Internal Server Error"
    # Like uvicorn, the server closes the connection after an app exception (the
    # response had already gone out, so it could not say so): use a new one.
    with httpx.Client(base_url=client.base_url, timeout=5) as fresh:
        assert fresh.get("/json").status_code == 200


def test_cors(client: httpx.Client) -> None:
    r = client.options(
        "/json",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-token",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "x-token" in r.headers["access-control-allow-headers"].lower()
    r = client.options(
        "/json", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
    )
    assert r.status_code == 400
    r = client.get("/json", headers={"origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    r = client.get("/json", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_gzip(client: httpx.Client) -> None:
    r = client.get("/big", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < len(BIG_TEXT)
    assert r.text == BIG_TEXT
    with client.stream("GET", "/big", headers={"accept-encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert gzip.decompress(raw).decode() == BIG_TEXT
    r = client.get("/big", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in r.headers
    assert r.text == BIG_TEXT
    r = client.get("/json", headers={"accept-encoding": "gzip"})  # below minimum_size
    assert "content-encoding" not in r.headers


def test_streaming_response(client: httpx.Client) -> None:
    r = client.get("/stream", headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in r.headers
    assert r.text == "".join(f"chunk {i}\n" for i in range(5))
    with client.stream("GET", "/stream") as r:
        assert "".join(r.iter_text()) == "".join(f"chunk {i}\n" for i in range(5))


def test_sync_iterator_streams_from_threadpool(client: httpx.Client) -> None:
    r = client.get("/sync-stream")
    assert r.status_code == 200
    assert r.text == "".join(f"sync {i} False\n" for i in range(3))


@pytest.mark.parametrize("size", [0, 1, 65536, len(BODY_2MB)])
def test_request_body(client: httpx.Client, size: int) -> None:
    body = BODY_2MB[:size]
    r = client.post("/body", content=body)
    assert r.status_code == 200
    assert r.json() == {"length": size, "sha256": hashlib.sha256(body).hexdigest()}


def test_request_body_chunked_upload(client: httpx.Client) -> None:
    def parts() -> Iterator[bytes]:
        for i in range(0, len(BODY_2MB), 300_000):
            yield BODY_2MB[i : i + 300_000]

    r = client.post("/body", content=parts())
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.json() == {"length": len(BODY_2MB), "sha256": hashlib.sha256(BODY_2MB).hexdigest()}


def test_background_task_runs_after_response(client: httpx.Client, framework: str) -> None:
    BG.__init__()  # type: ignore[misc]
    # The task blocks until the test releases it: if the server waited for it
    # before sending the response, this request would time out.
    r = client.get("/background")
    assert r.status_code == 200
    assert r.text == "sent"
    assert not BG.done.is_set()
    BG.gate.set()
    assert BG.done.wait(5)
    assert BG.ran_with == [framework]
    assert client.get("/json").status_code == 200


def test_lifespan_state_in_request(client: httpx.Client) -> None:
    assert client.get("/state").text == "hello from lifespan"


# -- Starlette only ------------------------------------------------------------------------
@pytest.fixture
def starlette_client(serve) -> Iterator[httpx.Client]:
    srv = serve(starlette_app)
    with httpx.Client(base_url=srv.url(), timeout=5) as c:
        yield c


def test_starlette_path_and_query_params(starlette_client: httpx.Client) -> None:
    r = starlette_client.get("/users/42", params=[("q", "a b"), ("q", "é")])
    assert r.status_code == 200
    assert r.json() == {"user_id": 42, "q": ["a b", "é"], "url": f"{starlette_client.base_url}users/7"}
    assert starlette_client.get("/users/abc").status_code == 404


def test_starlette_stream_stops_when_client_leaves(serve) -> None:
    STREAM_CLOSED.clear()
    srv = serve(starlette_app, graceful_shutdown_timeout=1)
    with httpx.Client(base_url=srv.url(), timeout=5) as c, c.stream("GET", "/endless") as r:
        assert r.status_code == 200
        assert next(r.iter_bytes()).startswith(b"tick")
    # The client closed the connection mid-stream: the generator is closed soon.
    assert STREAM_CLOSED.wait(5)


def test_starlette_multipart_upload(starlette_client: httpx.Client) -> None:
    r = starlette_client.post(
        "/form",
        data={"name": "bob"},
        files={"upload": ("hello.txt", b"hello file\r\n--not-a-boundary", "text/plain")},
    )
    assert r.status_code == 200
    assert r.json() == {
        "name": "bob",
        "upload": {"filename": "hello.txt", "content": "hello file\r\n--not-a-boundary"},
    }


def test_starlette_file_response(starlette_client: httpx.Client) -> None:
    data = THIS_FILE.read_bytes()
    r = starlette_client.get("/file", headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["content-type"].startswith("text/x-python")
    assert "etag" in r.headers
    assert "last-modified" in r.headers
    r = starlette_client.get("/file", headers={"range": "bytes=10-19", "accept-encoding": "identity"})
    assert r.status_code == 206
    assert r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = starlette_client.head("/file")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(data))
    assert starlette_client.get("/json").status_code == 200  # framing stayed in sync


def test_starlette_is_disconnected_false_while_connected(starlette_client: httpx.Client) -> None:
    for _ in range(2):
        r = starlette_client.get("/disconnected")
        assert r.text == "False"


def test_starlette_mount(starlette_client: httpx.Client) -> None:
    r = starlette_client.get("/sub/inner")
    assert r.json() == {"path": "/sub/inner", "root_path": "/sub"}


def test_starlette_under_root_path(serve) -> None:
    srv = serve(starlette_app, root_path="/api")
    with httpx.Client(base_url=srv.url(), timeout=5) as c:
        r = c.get("/users/1")
        assert r.status_code == 200
        assert r.json()["url"] == f"http://127.0.0.1:{srv.port}/api/users/7"
        assert c.get("/json").json() == {"hello": "world", "path": "/api/json"}
        assert c.get("/sub/inner").json() == {"path": "/api/sub/inner", "root_path": "/api/sub"}


# -- FastAPI only --------------------------------------------------------------------------
@pytest.fixture
def fastapi_client(serve) -> Iterator[httpx.Client]:
    srv = serve(fastapi_app)
    with httpx.Client(base_url=srv.url(), timeout=5) as c:
        yield c


def test_fastapi_path_and_query_params(fastapi_client: httpx.Client) -> None:
    r = fastapi_client.get("/items/5", params={"q": "caf é", "limit": "3"})
    assert r.status_code == 200
    assert r.json() == {"item_id": 5, "q": "caf é", "limit": 3}
    assert fastapi_client.get("/items/5").json() == {"item_id": 5, "q": None, "limit": 10}


def test_fastapi_validation_errors(fastapi_client: httpx.Client) -> None:
    r = fastapi_client.get("/items/abc")
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["path", "item_id"]
    r = fastapi_client.get("/items/1", params={"limit": "many"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "limit"]
    r = fastapi_client.post("/items", json={"name": "x"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "price"]
    r = fastapi_client.post("/items", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = fastapi_client.post("/items", json={"name": "x", "price": 1.5, "tags": ["a"]})
    assert r.status_code == 201
    assert r.json() == {"created": {"name": "x", "price": 1.5, "tags": ["a"]}}


def test_fastapi_sync_endpoint_runs_in_threadpool(fastapi_client: httpx.Client) -> None:
    loop_thread = fastapi_client.get("/async").json()["thread"]
    for _ in range(3):
        worker = fastapi_client.get("/sync").json()["thread"]
        assert worker != loop_thread
    assert fastapi_client.get("/async").json()["thread"] == loop_thread


def test_fastapi_multipart_upload(fastapi_client: httpx.Client) -> None:
    files = [
        ("files", ("a.txt", b"first", "text/plain")),
        ("files", ("b.bin", b"second", "application/octet-stream")),
    ]
    r = fastapi_client.post("/upload", data={"name": "alice"}, files=files)
    assert r.status_code == 200
    assert r.json() == {
        "name": "alice",
        "files": [{"filename": "a.txt", "content": "first"}, {"filename": "b.bin", "content": "second"}],
    }
    r = fastapi_client.post("/upload", data={"name": "alice"})
    assert r.status_code == 422


def test_fastapi_openapi(fastapi_client: httpx.Client) -> None:
    r = fastapi_client.get("/openapi.json")
    assert r.status_code == 200
    assert "/items/{item_id}" in r.json()["paths"]
    r = fastapi_client.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()


def test_fastapi_under_root_path(serve) -> None:
    srv = serve(fastapi_app, root_path="/api")
    with httpx.Client(base_url=srv.url(), timeout=5) as c:
        assert c.get("/items/3").json() == {"item_id": 3, "q": None, "limit": 10}
        assert c.get("/json").json() == {"hello": "world", "path": "/api/json"}
        assert c.get("/openapi.json").json()["servers"] == [{"url": "/api"}]
