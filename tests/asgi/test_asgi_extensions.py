"""ASGI extensions (pathsend, zerocopysend, trailers, early hints), proxy headers and
the spec rules the server owns, seen from a client on a real socket."""

from __future__ import annotations

import asyncio
import os
import queue
from pathlib import Path
from typing import Any

import httpx
import pytest
import starlette
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..helpers.asgi import TIMEOUT, Raw, close_socket, request, respond

Scope = dict[str, Any]
DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: more than one socket write


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


def scope_recorder(scopes: list[Scope]) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await respond(send)

    return app


# -- what is advertised ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("te", "trailers"),
    [
        (None, False),
        (b"trailers", True),
        (b"gzip;q=0.5, Trailers", True),
        (b"gzip", False),
    ],
)
def test_extensions_advertised(serve, te: bytes | None, trailers: bool) -> None:
    scopes: list[Scope] = []
    srv = serve(scope_recorder(scopes), lifespan="off")
    extra = b"" if te is None else b"TE: %s\r\nConnection: TE\r\n" % te
    with Raw(srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")
        assert c.response().status == 200
    extensions = scopes[0]["extensions"]
    assert "http.response.pathsend" in extensions
    assert "http.response.zerocopysend" in extensions
    assert "http.response.early_hint" in extensions
    assert ("http.response.trailers" in extensions) is trailers
    assert scopes[0]["asgi"] == {"version": "3.0", "spec_version": "2.3"}


@pytest.mark.parametrize(("version", "offered"), [("0.46.2", False), ("0.47.0", True), ("1.10.0", True)])
def test_pathsend_offered_only_with_starlette_that_passes_it_through_gzip(
    serve, monkeypatch: pytest.MonkeyPatch, version: str, offered: bool
) -> None:
    # Before 0.47, Starlette's GZipMiddleware drops pathsend messages: a FileResponse
    # behind it would become a 500, so the extension is not offered at all.
    monkeypatch.setattr(starlette, "__version__", version)
    scopes: list[Scope] = []
    srv = serve(scope_recorder(scopes), lifespan="off")
    with Raw(srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n")
        assert c.response().status == 200
    extensions = scopes[0]["extensions"]
    assert ("http.response.pathsend" in extensions) is offered
    assert "http.response.zerocopysend" in extensions
    assert "http.response.trailers" in extensions


def test_extensions_are_not_shared_between_requests(serve) -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        scopes.append(scope)
        scope["extensions"].pop("http.response.zerocopysend")  # a middleware opting out
        await respond(send)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        for _ in range(2):
            c.send(request("/"))
            assert c.response().status == 200
    assert len(scopes) == 2  # the second request still got the full set (popped without KeyError)


# -- http.response.pathsend --------------------------------------------------------------------
def pathsend_app(path: Path, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        target = path if scope["path"] == "/file" else path.with_name("missing.bin")
        await send({"type": "http.response.start", "status": 200, "headers": headers or []})
        await send({"type": "http.response.pathsend", "path": str(target)})

    return app


def test_pathsend_sends_the_file_with_its_length(serve, data_file: Path) -> None:
    srv = serve(pathsend_app(data_file, [(b"content-type", b"application/octet-stream")]), lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/file"))
        resp = c.response()
        assert resp.status == 200
        assert resp.get(b"content-length") == str(len(DATA)).encode()
        assert resp.get(b"transfer-encoding") is None
        assert resp.body == DATA
        c.send(request("/file", "HEAD"))
        resp = c.response("HEAD")
        assert resp.get(b"content-length") == str(len(DATA)).encode()
        c.send(request("/file"))  # the connection is still in sync
        assert c.response().body == DATA


def test_pathsend_missing_file_is_500(serve, data_file: Path) -> None:
    srv = serve(pathsend_app(data_file), lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/nope"))
        resp = c.response()
    assert resp.status == 500
    assert resp.body == b"Internal Server Error"


def test_pathsend_wrong_declared_length_is_500(serve, data_file: Path) -> None:
    srv = serve(pathsend_app(data_file, [(b"content-length", b"10")]), lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/file"))
        resp = c.response()
    assert resp.status == 500


def test_starlette_file_response_uses_pathsend(serve, data_file: Path) -> None:
    kinds: list[str] = []

    async def file(request: Request) -> Response:
        return FileResponse(data_file)

    inner = Starlette(routes=[Route("/file", file, methods=["GET", "HEAD"])])

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        async def spy(message: Any) -> None:
            kinds.append(message["type"])
            await send(message)

        await inner(scope, receive, spy)

    srv = serve(app, lifespan="off")
    with httpx.Client(base_url=srv.url(), timeout=TIMEOUT) as client:
        r = client.get("/file")
        assert r.status_code == 200
        assert r.content == DATA
        assert r.headers["content-length"] == str(len(DATA))
        assert kinds == ["http.response.start", "http.response.pathsend"]
        r = client.get("/file", headers={"range": "bytes=1000-1999"})
        assert r.status_code == 206
        assert r.content == DATA[1000:2000]
        assert r.headers["content-range"] == f"bytes 1000-1999/{len(DATA)}"
        r = client.head("/file")
        assert (r.status_code, r.content) == (200, b"")
        assert r.headers["content-length"] == str(len(DATA))


# -- http.response.zerocopysend ----------------------------------------------------------------
def zerocopy_app(path: Path) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [] if scope["query_string"] != b"length" else [(b"content-length", b"110")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with open(path, "rb") as f:
            await send({"type": "http.response.body", "body": b"<", "more_body": True})
            message = {"type": "http.response.zerocopysend", "file": f, "offset": 100, "count": 100}
            await send({**message, "more_body": True})
            f.seek(len(DATA) - 4)  # no offset: from the current position; no count: to the end
            await send({"type": "http.response.zerocopysend", "file": f, "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": f.fileno(), "offset": 0, "count": 5})

    return app


def test_zerocopysend_chunked_and_mixed_with_body(serve, data_file: Path) -> None:
    srv = serve(zerocopy_app(data_file), lifespan="off")
    expected = b"<" + DATA[100:200] + b"tail" + DATA[:5]
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        assert resp.get(b"transfer-encoding") == b"chunked"
        assert resp.body == expected
        c.send(request("/?length"))
        resp = c.response()
        assert resp.get(b"content-length") == b"110"
        assert resp.body == expected
        c.send(b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0: delimited by close
        assert c.head()[0] == 200
        assert c.rest() == expected


def test_zerocopysend_whole_file(serve, data_file: Path) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(data_file, "rb") as f:
            await send({"type": "http.response.zerocopysend", "file": f})

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        for _ in range(2):
            c.send(request("/"))
            resp = c.response()
            assert resp.get(b"content-length") == str(len(DATA)).encode()
            assert resp.body == DATA


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_zerocopysend_after_client_left_raises_oserror(serve, data_file: Path, how: str) -> None:
    events: queue.Queue[Any] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        try:
            with open(data_file, "rb") as f:
                for _ in range(300):
                    await asyncio.sleep(0.01)
                    await send(
                        {"type": "http.response.zerocopysend", "file": f, "offset": 0, "more_body": True}
                    )
        except BaseException as exc:
            events.put(exc)
            raise

    srv = serve(app, lifespan="off", graceful_shutdown_timeout=0.5)
    c = Raw(srv.port)
    c.send(request("/"))
    c.until(b"first")
    close_socket(c, how)
    assert isinstance(events.get(timeout=TIMEOUT), OSError)


# -- http.response.trailers --------------------------------------------------------------------
def read_chunked_with_trailers(c: Raw) -> tuple[bytes, bytes]:
    body = b""
    while True:
        size = int(c.until(b"\r\n").strip(), 16)
        if size == 0:
            break
        body += c.exact(size + 2)[:-2]
    trailers = b""
    while (line := c.until(b"\r\n")) != b"\r\n":
        trailers += line
    return body, trailers


def trailers_app(**start: Any) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        message = {"type": "http.response.start", "status": 200, "headers": [(b"trailer", b"x-checksum")]}
        await send({**message, "trailers": True, **start})
        await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
        await send({"type": "http.response.body", "body": b"world"})
        await send(
            {"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")], "more_trailers": True}
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-count", b"2")]})

    return app


def test_trailers_sent_when_client_accepts_them(serve) -> None:
    srv = serve(trailers_app(), lifespan="off")
    with Raw(srv.port) as c:
        for _ in range(2):  # and the connection stays usable
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: TE\r\n\r\n")
            status, headers = c.head()
            assert status == 200
            assert (b"transfer-encoding", b"chunked") in headers
            assert read_chunked_with_trailers(c) == (b"hello world", b"x-checksum: abc\r\nx-count: 2\r\n")


def test_trailers_dropped_without_te(serve) -> None:
    srv = serve(trailers_app(), lifespan="off")
    with Raw(srv.port) as c:
        for _ in range(2):
            c.send(request("/"))
            resp = c.response()
            assert resp.body == b"hello world"
            assert resp.raw_body.endswith(b"0\r\n\r\n")


def test_trailers_dropped_with_content_length(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers, "trailers": True})
        await send({"type": "http.response.body", "body": b"hello"})
        await send({"type": "http.response.trailers", "headers": [(b"x-a", b"1")]})

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        for _ in range(2):
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n")
            resp = c.response()
            assert (resp.get(b"content-length"), resp.body) == (b"5", b"hello")


@pytest.mark.parametrize(
    "misuse",
    [
        [{"type": "http.response.trailers", "headers": []}],  # before the body ended
        [
            {"type": "http.response.body", "body": b"x"},
            {"type": "http.response.trailers", "headers": [(b"x-a", b"1\r\nx-injected: 1")]},
        ],
    ],
)
def test_trailers_misuse_never_completes_the_response(serve, misuse: list[dict[str, Any]]) -> None:
    errors: queue.Queue[BaseException] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        try:
            for message in misuse:
                await send(message)
        except Exception as exc:
            errors.put(exc)
            raise

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n")
        c.head()
        rest = c.rest()  # the server closes: the body never looks complete
    assert b"injected" not in rest
    assert not rest.endswith(b"0\r\n\r\n")
    assert isinstance(errors.get(timeout=TIMEOUT), RuntimeError)


# -- http.response.early_hint ------------------------------------------------------------------
def test_early_hints_before_the_response(serve) -> None:
    async def hinted(request: Request) -> Response:
        await request.send_early_hints("</style.css>; rel=preload; as=style", "</app.js>; rel=preload")
        return PlainTextResponse("final")

    srv = serve(Starlette(routes=[Route("/", hinted)]), lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        status, headers = c.head()
        assert status == 103
        assert headers == [
            (b"link", b"</style.css>; rel=preload; as=style"),
            (b"link", b"</app.js>; rel=preload"),
        ]
        resp = c.response()
        assert (resp.status, resp.body) == (200, b"final")
        c.send(b"GET / HTTP/1.0\r\n\r\n")  # never a 1xx to an HTTP/1.0 client
        status, _ = c.head()
        assert status == 200
    with httpx.Client(timeout=TIMEOUT) as client:  # clients skip the interim response
        assert client.get(srv.url()).text == "final"


# -- spec rules the server owns --------------------------------------------------------------
def test_receive_after_response_is_disconnect_even_with_unread_body(serve) -> None:
    after: queue.Queue[Any] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, b"early")
        after.put(dict(await receive()))

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
        assert c.response().body == b"early"
        assert after.get(timeout=TIMEOUT) == {"type": "http.disconnect"}
        c.send(b"56789")
        c.send(request("/"))
        assert c.response().body == b"early"


def test_start_after_client_left_raises_oserror(serve) -> None:
    events: queue.Queue[Any] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except BaseException as exc:
            events.put(exc)
            raise

    srv = serve(app, lifespan="off")
    c = Raw(srv.port)
    c.send(request("/"))
    close_socket(c, "rst")
    assert isinstance(events.get(timeout=TIMEOUT), OSError)


# -- proxy headers, trusted like uvicorn's defaults ------------------------------------------------
def test_proxy_headers_from_trusted_peer(serve) -> None:
    scopes: list[Scope] = []
    srv = serve(scope_recorder(scopes), lifespan="off")
    with Raw(srv.port) as c:
        c.send(
            b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\n"
            b"X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\n\r\n"
        )
        assert c.response().status == 200
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: [2001:db8::1]:4711\r\n\r\n")
        assert c.response().status == 200
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: gopher\r\n\r\n")
        assert c.response().status == 200
    assert (scopes[0]["scheme"], tuple(scopes[0]["client"])) == ("https", ("203.0.113.7", 0))
    assert (scopes[1]["scheme"], tuple(scopes[1]["client"])) == ("http", ("2001:db8::1", 4711))
    assert scopes[2]["scheme"] == "http"
    assert scopes[2]["client"][0] == "127.0.0.1"


def test_proxy_headers_ignored_from_untrusted_peer(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8, not-an-ip")
    scopes: list[Scope] = []
    srv = serve(scope_recorder(scopes), lifespan="off")
    with Raw(srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")
        assert c.response().status == 200
    assert scopes[0]["scheme"] == "http"
    assert scopes[0]["client"][0] == "127.0.0.1"


def test_trusted_hosts_picks_nearest_untrusted_hop() -> None:
    from blazeasgi.proxy import TrustedHosts

    trusted = TrustedHosts("127.0.0.1, 10.0.0.0/8, proxy.local")
    assert "10.1.2.3" in trusted
    assert "proxy.local" in trusted
    assert "192.0.2.1" not in trusted
    assert None not in trusted
    assert trusted.client_from("198.51.100.1, 192.0.2.1:80, 10.0.0.5") == ("192.0.2.1", 80)
    assert trusted.client_from("10.0.0.1, 127.0.0.1") == ("10.0.0.1", 0)  # all trusted: the first
    assert TrustedHosts("*").client_from("198.51.100.1, 192.0.2.1") == ("198.51.100.1", 0)
    assert "anything" in TrustedHosts(["*"])


def test_no_file_descriptor_leak_from_pathsend(serve, data_file: Path) -> None:
    srv = serve(pathsend_app(data_file), lifespan="off")
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
    with Raw(srv.port) as c:
        for _ in range(20):
            c.send(request("/file"))
            assert c.response().body == DATA
    if before:
        assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_proxy_header_settings_reach_the_adapter() -> None:
    from blazeasgi.cli import to_served_app
    from blazeasgi.config import Config
    from blazeasgi.settings import InterfaceSettings

    async def app(scope: Scope, receive: Any, send: Any) -> None:  # pragma: no cover - never called
        pass

    ignoring = InterfaceSettings.from_config(Config(proxy_headers=False))
    trusting_all = InterfaceSettings.from_config(Config(forwarded_allow_ips="*"))
    assert to_served_app(app, ignoring).proxy is None  # type: ignore[attr-defined]
    assert to_served_app(app, trusting_all).proxy.trusted.always  # type: ignore[attr-defined]
