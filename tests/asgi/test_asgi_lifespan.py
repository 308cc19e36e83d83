"""The ASGI lifespan protocol around a server's life."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from blazeasgi import App
from blazeasgi.cli import to_served_app
from blazeasgi.config import Config
from blazeasgi.engine.server import Server, StartupFailed, bind_socket
from blazeasgi.settings import InterfaceSettings

Scope = dict[str, Any]


class LifespanApp:
    """Records lifespan events and requests; behaviour tuned per test."""

    def __init__(self, on_startup: str = "ok", on_shutdown: str = "ok", state: Any = None) -> None:
        self.events: list[str] = []
        self.scopes: list[Scope] = []
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self.state = state or {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            self.scopes.append(scope)
            message = await receive()
            assert message["type"] == "lifespan.startup"
            self.events.append("startup")
            if self.on_startup == "raise":
                raise RuntimeError("cannot start")
            if self.on_startup == "fail":
                await send({"type": "lifespan.startup.failed", "message": "database is down"})
                return
            if self.on_startup == "slow":
                await asyncio.sleep(0.05)
            scope["state"].update(self.state)
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            self.events.append("shutdown")
            if self.on_shutdown == "raise":
                raise RuntimeError("cannot stop")
            if self.on_shutdown == "fail":
                await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.events.append("request")
        self.scopes.append(scope)
        body = repr(sorted(scope.get("state", {}))).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def get(port: int, path: str = "/") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def serve_once(app: Any, lifespan: str, requests: int = 1) -> list[bytes]:
    """Start a server on this loop, make requests, stop it; the responses."""
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = Server(to_served_app(app, InterfaceSettings(lifespan=lifespan)), Config(access_log=False))
    task = asyncio.ensure_future(server.serve([sock], install_signal_handlers=False))
    try:
        started = asyncio.ensure_future(server.started.wait())
        await asyncio.wait([task, started], timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            started.cancel()
            task.result()  # raises StartupFailed
            raise AssertionError("server stopped without error")
        assert started.done(), "server did not start"
        out = [await get(port) for _ in range(requests)]
        server.request_stop()
        await asyncio.wait_for(task, 5)
        return out
    finally:
        task.cancel()
        sock.close()


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_startup_and_shutdown_around_serving(run, mode: str) -> None:
    app = LifespanApp()
    out = run(serve_once(app, mode, requests=2))
    assert all(o.startswith(b"HTTP/1.1 200 OK") for o in out)
    assert app.events == ["startup", "request", "request", "shutdown"]
    lifespan_scope = app.scopes[0]
    assert lifespan_scope["type"] == "lifespan"
    assert lifespan_scope["asgi"]["version"] == "3.0"
    assert isinstance(lifespan_scope["state"], dict)


def test_slow_startup_completes_before_serving(run) -> None:
    app = LifespanApp(on_startup="slow", state={"ready": True})
    out = run(serve_once(app, "on"))
    assert out[0].endswith(b"['ready']")
    assert app.events == ["startup", "request", "shutdown"]


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_startup_failed_message_stops_server(run, mode: str) -> None:
    app = LifespanApp(on_startup="fail")
    with pytest.raises(StartupFailed, match="database is down"):
        run(serve_once(app, mode))
    assert app.events == ["startup"]


def test_exception_during_startup_with_lifespan_on(run) -> None:
    app = LifespanApp(on_startup="raise")
    with pytest.raises(StartupFailed, match="cannot start"):
        run(serve_once(app, "on"))


def test_auto_mode_serves_app_that_raises_on_lifespan(serve) -> None:
    calls: list[str] = []

    async def http_only(scope: Scope, receive: Any, send: Any) -> None:
        calls.append(scope["type"])
        if scope["type"] != "http":
            raise ValueError(f"unsupported scope {scope['type']}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"served"})

    srv = serve(http_only, lifespan="auto")
    r = httpx.get(srv.url(), timeout=5)
    assert (r.status_code, r.text) == (200, "served")
    assert calls == ["lifespan", "http"]


def test_auto_mode_serves_app_that_ignores_lifespan(serve) -> None:
    async def http_only(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"served"})

    srv = serve(http_only, lifespan="auto")
    assert httpx.get(srv.url(), timeout=5).text == "served"


def test_off_mode_never_sends_lifespan(run) -> None:
    app = LifespanApp(state={"x": 1})
    out = run(serve_once(app, "off"))
    assert out[0].startswith(b"HTTP/1.1 200 OK")
    assert out[0].endswith(b"[]")  # no lifespan, no state
    assert app.events == ["request"]


def test_invalid_lifespan_mode() -> None:
    with pytest.raises(ValueError, match="lifespan"):
        to_served_app(LifespanApp(), InterfaceSettings(lifespan="sometimes"))


def test_state_from_lifespan_visible_in_requests(serve) -> None:
    shared = object()
    app = LifespanApp(state={"pool": shared, "name": "db"})
    srv = serve(app, lifespan="on")
    with httpx.Client(base_url=srv.url(), timeout=5) as client:
        for _ in range(2):
            assert client.get("/").text == "['name', 'pool']"
    requests = [s for s in app.scopes if s["type"] == "http"]
    assert len(requests) == 2
    for scope in requests:
        assert scope["state"]["name"] == "db"
        assert scope["state"]["pool"] is shared  # a shallow copy, like uvicorn
    assert requests[0]["state"] is not requests[1]["state"]


@pytest.mark.parametrize("on_shutdown", ["fail", "raise"])
def test_shutdown_failure_is_logged_not_raised(
    run, caplog: pytest.LogCaptureFixture, on_shutdown: str
) -> None:
    app = LifespanApp(on_shutdown=on_shutdown)
    with caplog.at_level(logging.ERROR, logger="blazeasgi"):
        out = run(serve_once(app, "on"))
    assert out[0].startswith(b"HTTP/1.1 200 OK")
    assert app.events == ["startup", "request", "shutdown"]
    text = caplog.text
    assert ("flush failed" if on_shutdown == "fail" else "cannot stop") in text


def test_native_app_runs_fallback_lifespan(serve) -> None:
    asgi = LifespanApp(state={"from_fallback": 1})
    native = App(fallback=asgi)

    @native.get("/native")
    def hello(request: Any) -> str:
        return "native"

    srv = serve(native, lifespan="on")
    with httpx.Client(base_url=srv.url(), timeout=5) as client:
        assert client.get("/native").text == "native"
        assert client.get("/other").text == "['from_fallback']"
    assert asgi.events == ["startup", "request"]
