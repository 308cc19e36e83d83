"""Mixed mode: native routes first, a FastAPI app for everything else; lifespans."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from pydantic import BaseModel

from blazeasgi import App, PlainTextResponse, Request, Response


class Item(BaseModel):
    name: str
    price: float


def build_fastapi(events: list[str], stopped: threading.Event | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("fastapi startup")
        app.state.greeting = "from app.state"
        yield {"db": "connected"}
        events.append("fastapi shutdown")
        if stopped is not None:
            stopped.set()

    api = FastAPI(lifespan=lifespan)

    @api.get("/api/items/{item_id}")
    def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q}

    @api.post("/api/items")
    def create_item(item: Item) -> dict[str, Any]:
        return {"created": item.name, "price": item.price}

    @api.get("/api/state")
    def state(request: FastAPIRequest) -> dict[str, Any]:
        return {"db": request.state.db, "greeting": request.app.state.greeting}

    @api.post("/native")
    def native_path_post() -> dict[str, str]:
        return {"served_by": "fastapi"}

    @api.get("/api/path/{rest:path}")
    def path_param(rest: str) -> dict[str, str]:
        return {"rest": rest}

    return api


def build_mixed(events: list[str], stopped: threading.Event | None = None) -> App:
    app = App(fallback=build_fastapi(events, stopped))

    @app.get("/native")
    def native(request: Request) -> Response:
        return PlainTextResponse("native")

    @app.get("/native/{n:int}")
    async def native_param(request: Request) -> dict[str, Any]:
        return {"native": request.path_params["n"]}

    return app


@pytest.fixture
def mixed(serve: Any) -> Iterator[tuple[httpx.Client, list[str]]]:
    events: list[str] = []
    srv = serve(build_mixed(events))
    with httpx.Client(base_url=srv.url(""), timeout=10) as c:
        yield c, events


def test_native_routes_answered_natively(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, _ = mixed
    r = client.get("/native")
    assert r.status_code == 200
    assert r.text == "native"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = client.get("/native/12")
    assert r.json() == {"native": 12}


def test_head_on_native_get_route_stays_native(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, _ = mixed
    r = client.head("/native")
    assert r.status_code == 200
    assert r.headers["content-length"] == "6"
    assert r.content == b""


def test_unknown_path_goes_to_fastapi_404(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, _ = mixed
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": "Not Found"}


def test_native_path_other_method_goes_to_fastapi(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, _ = mixed
    r = client.post("/native")
    assert r.status_code == 200
    assert r.json() == {"served_by": "fastapi"}
    # a method neither side handles: FastAPI's 405, not the native plain-text one
    r = client.delete("/native")
    assert r.status_code == 405
    assert r.json() == {"detail": "Method Not Allowed"}
    # dynamic native route, wrong method: FastAPI has no such path either
    r = client.put("/native/3")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_native_int_param_mismatch_falls_through(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, _ = mixed
    r = client.get("/native/abc")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_fastapi_path_and_query_params(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, _ = mixed
    r = client.get("/api/items/5", params={"q": "héllo wörld"})
    assert r.status_code == 200
    assert r.json() == {"item_id": 5, "q": "héllo wörld"}
    r = client.get("/api/path/a/b%20c")
    assert r.json() == {"rest": "a/b c"}


def test_fastapi_validation_errors_422(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, _ = mixed
    r = client.get("/api/items/not-a-number")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["path", "item_id"]
    r = client.post("/api/items", json={"name": "x"})
    assert r.status_code == 422
    assert any(err["loc"] == ["body", "price"] for err in r.json()["detail"])
    r = client.post("/api/items", json={"name": "widget", "price": 9.5})
    assert r.status_code == 200
    assert r.json() == {"created": "widget", "price": 9.5}


def test_fallback_lifespan_state_visible(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, events = mixed
    assert events == ["fastapi startup"]
    r = client.get("/api/state")
    assert r.status_code == 200
    assert r.json() == {"db": "connected", "greeting": "from app.state"}


def stop(srv: Any) -> None:
    srv.loop.call_soon_threadsafe(srv.server.request_stop)


def test_fallback_lifespan_shutdown_runs_on_stop(serve: Any) -> None:
    events: list[str] = []
    stopped = threading.Event()
    srv = serve(build_mixed(events, stopped))
    with httpx.Client(timeout=10) as c:
        assert c.get(srv.url("/native")).text == "native"
        assert c.get(srv.url("/api/items/1")).json() == {"item_id": 1, "q": None}
    stop(srv)
    assert stopped.wait(10)
    assert events == ["fastapi startup", "fastapi shutdown"]


def test_mixed_keep_alive_alternating(mixed: tuple[httpx.Client, list[str]]) -> None:
    client, _ = mixed
    for i in range(5):
        assert client.get("/native").text == "native"
        assert client.get(f"/api/items/{i}").json()["item_id"] == i


# -- native lifespan and hooks ------------------------------------------------------------


def test_native_lifespan_and_hooks(serve: Any) -> None:
    events: list[str] = []
    stopped = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append("lifespan enter")
        yield {"pool": "ready"}
        events.append("lifespan exit")

    def sync_start() -> None:
        events.append("sync startup")

    async def async_start() -> None:
        events.append("async startup")

    def sync_stop() -> None:
        events.append("sync shutdown")

    async def async_stop() -> None:
        events.append("async shutdown")
        stopped.set()

    app = App(
        lifespan=lifespan,
        on_startup=[sync_start, async_start],
        on_shutdown=[sync_stop, async_stop],
    )

    @app.get("/state")
    def state(request: Request) -> dict[str, Any]:
        return dict(app.state)

    srv = serve(app)
    assert set(events) == {"lifespan enter", "sync startup", "async startup"}
    assert events.index("sync startup") < events.index("async startup")
    with httpx.Client(timeout=10) as c:
        assert c.get(srv.url("/state")).json() == {"pool": "ready"}
    stop(srv)
    assert stopped.wait(10)
    assert set(events[3:]) == {"lifespan exit", "sync shutdown", "async shutdown"}
    assert events.index("sync shutdown") < events.index("async shutdown")


def test_native_lifespan_without_state(serve: Any) -> None:
    entered = threading.Event()
    exited = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        entered.set()
        yield
        exited.set()

    app = App(lifespan=lifespan)

    @app.get("/")
    def index(request: Request) -> str:
        return "up"

    srv = serve(app)
    assert entered.is_set()
    with httpx.Client(timeout=10) as c:
        assert c.get(srv.url("/")).text == "up"
    stop(srv)
    assert exited.wait(10)


def test_native_and_fallback_lifespans_both_run(serve: Any) -> None:
    events: list[str] = []
    stopped = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("native startup")
        yield
        events.append("native shutdown")

    app = App(fallback=build_fastapi(events, stopped), lifespan=lifespan)

    @app.get("/n")
    def n(request: Request) -> str:
        return "n"

    srv = serve(app)
    assert set(events) == {"native startup", "fastapi startup"}
    with httpx.Client(timeout=10) as c:
        assert c.get(srv.url("/n")).text == "n"
        assert c.get(srv.url("/api/state")).json()["db"] == "connected"
    stop(srv)
    assert stopped.wait(10)
    assert set(events) == {"native startup", "fastapi startup", "native shutdown", "fastapi shutdown"}
