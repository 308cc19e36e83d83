"""``--interface auto|asgi3|asgi2|wsgi``: ASGI 2 and WSGI apps (Flask) served like uvicorn serves them."""

from __future__ import annotations

import functools
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

try:
    import flask
except ImportError:  # pragma: no cover - flask is a test dependency
    flask = None

from blazeasgi.asgi.interfaces import ASGI2App, as_asgi3, detect_interface
from blazeasgi.asgi.wsgi import WSGIAdapter
from blazeasgi.cli import to_served_app

from ..helpers.asgi import TIMEOUT, Raw, close_socket, request
from ..helpers.cli import Blaze, free_port

Scope = dict[str, Any]


# -- detection, as uvicorn's --interface auto ------------------------------------------------------
async def asgi3_function(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-kind", b"asgi3")]})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


def asgi2_function(scope: Scope) -> Any:
    async def instance(receive: Any, send: Any) -> None:
        await asgi3_function(scope, receive, send)

    return instance


class ASGI2Class:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] == "lifespan":
            return  # no lifespan support: raises nothing, sends nothing
        body = f"asgi2 {self.scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


class ASGI3Instance:
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await asgi3_function(scope, receive, send)


class AwaitableClass:
    """A class whose instances are awaited: ASGI 3 by construction."""

    def __init__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.args = (scope, receive, send)

    def __await__(self) -> Any:
        return asgi3_function(*self.args).__await__()


class SyncCallInstance:
    def __call__(self, scope: Scope) -> Any:
        return ASGI2Class(scope)


needs_flask = pytest.mark.skipif(flask is None, reason="flask is not installed")


@pytest.mark.parametrize(
    ("app", "interface"),
    [
        (asgi3_function, "asgi3"),
        (asgi2_function, "asgi2"),
        (ASGI2Class, "asgi2"),
        (AwaitableClass, "asgi3"),
        (ASGI3Instance(), "asgi3"),
        (SyncCallInstance(), "asgi2"),
        (functools.partial(asgi3_function), "asgi3"),
        (Starlette(), "asgi3"),
        (FastAPI(), "asgi3"),
        (WSGIAdapter(lambda environ, start_response: []), "asgi3"),
    ],
)
def test_detect_interface_like_uvicorn(app: Any, interface: str) -> None:
    assert detect_interface(app) == interface


@needs_flask
def test_wsgi_is_never_guessed() -> None:
    assert detect_interface(wsgi) == "asgi2"  # as with uvicorn: WSGI needs --interface wsgi


def test_unknown_interface_rejected() -> None:
    with pytest.raises(ValueError, match="interface"):
        as_asgi3(asgi3_function, "asgi4")


@pytest.mark.parametrize("app", [asgi2_function, ASGI2Class, AwaitableClass, SyncCallInstance()])
def test_asgi2_and_awaitable_apps_are_served(serve, app: Any) -> None:
    srv = serve(to_served_app_like_cli(app))
    with httpx.Client(base_url=srv.url(), timeout=TIMEOUT) as client:
        r = client.get("/caf%C3%A9")
        assert r.status_code == 200
        assert r.text.endswith("/café")


def to_served_app_like_cli(app: Any, interface: str = "auto") -> Any:
    """What ``blazeasgi --interface ...`` serves, as an ASGI 3 callable for the fixture."""
    wrapped, _ = as_asgi3(app, interface)
    return wrapped


def test_forced_asgi2_interface_wraps_the_app() -> None:
    wrapped, kind = as_asgi3(ASGI2Class, "asgi2")
    assert (kind, type(wrapped)) == ("asgi2", ASGI2App)
    wrapped, kind = as_asgi3(asgi3_function, "asgi3")
    assert (kind, wrapped) == ("asgi3", asgi3_function)
    served = to_served_app(raw_wsgi, interface="wsgi")
    assert isinstance(served.app, WSGIAdapter)  # type: ignore[attr-defined]


# -- WSGI -----------------------------------------------------------------------------------------
CLOSED = threading.Event()
SEEN: queue.Queue[Any] = queue.Queue()
GATE = threading.Event()


def make_flask_app() -> Any:
    """The Flask app the WSGI tests serve (a function: flask is optional)."""
    app = flask.Flask("wsgi_compat")

    @app.route("/echo", methods=["POST"])
    def w_echo() -> Any:
        data = flask.request.get_data()
        return flask.jsonify(
            length=len(data),
            head=data[:10].decode(),
            content_type=flask.request.content_type,
            script_root=flask.request.script_root,
            path=flask.request.path,
        )

    @app.route("/env/<path:rest>")
    def w_env(rest: str) -> Any:
        env = flask.request.environ
        keys = ["SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "SERVER_PORT", "REMOTE_ADDR"]
        return flask.jsonify(
            {k: env[k] for k in keys}
            | {"rest": rest, "x_multi": env.get("HTTP_X_MULTI"), "url": flask.request.url}
        )

    @app.route("/cookies")
    def w_cookies() -> Any:
        response = flask.make_response("cookies")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2", httponly=True)
        return response

    @app.route("/redirect")
    def w_redirect() -> Any:
        return flask.redirect("/cookies")

    @app.route("/stream")
    def w_stream() -> Any:
        def generate() -> Iterator[str]:
            for i in range(3):
                yield f"part {i}\n"

        return flask.Response(generate(), mimetype="text/plain")

    @app.route("/endless")
    def w_endless() -> Any:
        def generate() -> Iterator[bytes]:
            try:
                while True:
                    yield b"x" * 65536
            finally:
                CLOSED.set()

        return flask.Response(generate(), mimetype="application/octet-stream")

    @app.route("/crash")
    def w_crash() -> Any:
        raise RuntimeError("boom")

    @app.route("/wait")
    def w_wait() -> Any:
        return "released" if GATE.wait(TIMEOUT) else "timed out"

    @app.route("/release")
    def w_release() -> Any:
        GATE.set()
        return "ok"

    return app


wsgi = make_flask_app() if flask is not None else None


def raw_wsgi(environ: dict[str, Any], start_response: Any) -> Any:
    """Plain WSGI corner cases: write(), exc_info, too-long bodies, close()."""
    path = environ["PATH_INFO"]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"and returned"]
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("oops")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Length", "5")], sys.exc_info())
        return [b"sorry"]
    if path == "/too-long":
        start_response("200 OK", [("Content-Length", "5")])
        return iter([b"hel", b"lo world", b"never"])
    if path == "/latin1":
        start_response("200 OK", [("X-Name", "caf\xe9"), ("Content-Length", "2")])
        return [b"ok"]
    if path == "/no-start":
        return [b"nothing"]

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"closing"

        def close(self) -> None:
            SEEN.put("closed")

    start_response("200 OK", [])
    return Body()


@pytest.fixture
def wsgi_client(serve) -> Iterator[httpx.Client]:
    srv = serve(to_served_app_like_cli(wsgi, "wsgi"))
    with httpx.Client(base_url=srv.url(), timeout=TIMEOUT) as client:
        yield client


@needs_flask
def test_flask_json_body_and_chunked_upload(wsgi_client: httpx.Client) -> None:
    payload = b"0123456789" * 300_000  # 3 MB: spooled to a file
    r = wsgi_client.post("/echo", content=payload, headers={"content-type": "application/x-test"})
    assert r.json() == {
        "length": len(payload),
        "head": "0123456789",
        "content_type": "application/x-test",
        "script_root": "",
        "path": "/echo",
    }
    r = wsgi_client.post("/echo", content=iter([b"chunk", b"ed"]))  # no Content-Length
    assert r.json()["length"] == 7


@needs_flask
def test_flask_environ(wsgi_client: httpx.Client) -> None:
    r = wsgi_client.get("/env/caf%C3%A9/x?q=%20", headers=[("x-multi", "1"), ("x-multi", "2")])
    port = wsgi_client.base_url.port
    assert r.json() == {
        "SCRIPT_NAME": "",
        "PATH_INFO": "/env/caf\xc3\xa9/x",  # PEP 3333: UTF-8 bytes as latin-1
        "QUERY_STRING": "q=%20",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_PORT": str(port),
        "REMOTE_ADDR": "127.0.0.1",
        "rest": "café/x",
        "x_multi": "1,2",
        "url": f"http://127.0.0.1:{port}/env/café/x?q=%20",  # werkzeug shows an IRI
    }


@needs_flask
def test_flask_under_root_path(serve) -> None:
    srv = serve(to_served_app_like_cli(wsgi, "wsgi"), root_path="/api")
    with httpx.Client(base_url=srv.url(), timeout=TIMEOUT) as client:
        r = client.get("/env/a")
        assert r.json()["SCRIPT_NAME"] == "/api"
        assert r.json()["PATH_INFO"] == "/env/a"
        assert r.json()["url"].endswith("/api/env/a")


@needs_flask
def test_flask_cookies_redirect_stream_and_errors(wsgi_client: httpx.Client) -> None:
    r = wsgi_client.get("/cookies")
    assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly; Path=/"]
    r = wsgi_client.get("/redirect")
    assert (r.status_code, r.headers["location"]) == (302, "/cookies")
    r = wsgi_client.get("/stream")
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.text == "part 0\npart 1\npart 2\n"
    r = wsgi_client.head("/cookies")
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "7")
    r = wsgi_client.get("/crash")
    assert r.status_code == 500  # Flask's own error page
    assert "Internal Server Error" in r.text
    assert wsgi_client.get("/missing").status_code == 404


@needs_flask
def test_wsgi_requests_run_concurrently(wsgi_client: httpx.Client, serve) -> None:
    GATE.clear()
    result: queue.Queue[str] = queue.Queue()
    waiter = threading.Thread(target=lambda: result.put(wsgi_client.get("/wait").text))
    waiter.start()
    with httpx.Client(base_url=wsgi_client.base_url, timeout=TIMEOUT) as other:
        assert other.get("/release").text == "ok"  # served while /wait blocks a worker thread
    waiter.join(TIMEOUT)
    assert result.get(timeout=TIMEOUT) == "released"


@needs_flask
def test_wsgi_stream_stops_when_client_leaves(serve) -> None:
    CLOSED.clear()
    srv = serve(to_served_app_like_cli(wsgi, "wsgi"), graceful_shutdown_timeout=1)
    c = Raw(srv.port)
    c.send(request("/endless"))
    c.until(b"xxxx")
    close_socket(c, "rst")
    assert CLOSED.wait(TIMEOUT)  # the generator was closed: close() reached it


@pytest.mark.parametrize(
    ("path", "status", "headers", "body"),
    [
        (
            "/write",
            200,
            [(b"content-type", b"text/plain"), (b"transfer-encoding", b"chunked")],
            b"written and returned",
        ),
        ("/exc-info", 503, [(b"content-length", b"5")], b"sorry"),
        ("/too-long", 200, [(b"content-length", b"5")], b"hello"),
        ("/latin1", 200, [(b"x-name", b"caf\xe9"), (b"content-length", b"2")], b"ok"),
        ("/no-start", 500, None, b"Internal Server Error"),
        ("/closing", 200, [(b"transfer-encoding", b"chunked")], b"closing"),
    ],
)
def test_plain_wsgi_corner_cases(
    serve, path: str, status: int, headers: list[tuple[bytes, bytes]] | None, body: bytes
) -> None:
    srv = serve(to_served_app_like_cli(raw_wsgi, "wsgi"))
    with Raw(srv.port) as c:
        c.send(request(path))
        resp = c.response()
    assert (resp.status, resp.body) == (status, body)
    if headers is not None:
        assert sorted((n, v) for n, v in resp.headers if n not in (b"date", b"server")) == sorted(headers)
    if path == "/closing":
        assert SEEN.get(timeout=TIMEOUT) == "closed"


@pytest.mark.parametrize(
    ("interface", "target", "path", "text"),
    [
        pytest.param(
            "wsgi", "tests.asgi.test_asgi_interfaces:wsgi", "/cookies", "cookies", marks=needs_flask
        ),
        ("asgi2", "tests.asgi.test_asgi_interfaces:ASGI2Class", "/x", "asgi2 /x"),
        ("auto", "tests.asgi.test_asgi_interfaces:ASGI2Class", "/y", "asgi2 /y"),
    ],
)
def test_cli_interface_flag(interface: str, target: str, path: str, text: str) -> None:
    port = free_port()
    b = Blaze([target, "--port", str(port), "--interface", interface])
    try:
        b.wait_for(f"Serving on http://127.0.0.1:{port}")
        r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT)
        assert (r.status_code, r.text) == (200, text)
        assert b.stop() == 0
    finally:
        b.kill()


def test_cli_rejects_unknown_interface() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "blazeasgi", "x:y", "--interface", "asgi4", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "--interface" in out.stderr
