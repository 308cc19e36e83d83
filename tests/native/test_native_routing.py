"""Native routing and handler return values, as a client sees them."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from blazeasgi import App, JSONResponse, PlainTextResponse, Request, Response

from ..conftest import MockConnection


def build_app() -> App:
    app = App()

    @app.get("/")
    def index(request: Request) -> Response:
        return PlainTextResponse("index")

    @app.post("/things")
    async def create(request: Request) -> Response:
        return JSONResponse({"created": (await request.body()).decode()}, status_code=201)

    @app.put("/things")
    def replace(request: Request) -> str:
        return "put"

    @app.patch("/things")
    def update(request: Request) -> str:
        return "patch"

    @app.delete("/things")
    def remove(request: Request) -> None:
        return None

    @app.route("/multi", methods=["GET", "post"])
    def multi(request: Request) -> str:
        return f"multi {request.method}"

    def added(request: Request) -> str:
        return "added"

    app.add_route("/added", added)
    app.add_route("/added-post", added, methods=["POST"])

    @app.get("/items/{item_id}")
    def item(request: Request) -> dict[str, Any]:
        return {"params": request.path_params}

    @app.get("/users/{uid:int}/posts/{slug}")
    def post(request: Request) -> dict[str, Any]:
        return {"params": request.path_params, "uid_type": type(request.path_params["uid"]).__name__}

    @app.get("/files/{rest:path}")
    def files(request: Request) -> dict[str, Any]:
        return request.path_params

    @app.get("/static-params")
    def static_params(request: Request) -> dict[str, Any]:
        seen = dict(request.path_params)
        request.path_params["mine"] = "set by this request"
        return {"seen": seen}

    @app.get("/hello world")
    def spaced(request: Request) -> str:
        return "spaced"

    @app.get("/café")
    def cafe(request: Request) -> str:
        return "cafe"

    @app.get("/headed")
    def headed(request: Request) -> Response:
        return Response(b"0123456789", headers={"x-custom": "yes"}, media_type="text/plain")

    @app.get("/async-headed")
    async def async_headed(request: Request) -> Response:
        return Response(b"abcdef", headers={"x-custom": "async"}, media_type="text/plain")

    # return-value conversions
    @app.get("/ret/bytes")
    def ret_bytes(request: Request) -> bytes:
        return b"\x00\x01raw"

    @app.get("/ret/str")
    def ret_str(request: Request) -> str:
        return "héllo"

    @app.get("/ret/dict")
    def ret_dict(request: Request) -> dict[str, Any]:
        return {"a": 1, "b": [True, None]}

    @app.get("/ret/list")
    def ret_list(request: Request) -> list[Any]:
        return [1, "two", {"three": 3}]

    @app.get("/ret/none")
    def ret_none(request: Request) -> None:
        return None

    @app.get("/ret/bad")
    def ret_bad(request: Request) -> Any:
        return 42

    @app.get("/aret/bytes")
    async def aret_bytes(request: Request) -> bytes:
        return b"async-raw"

    @app.get("/aret/str")
    async def aret_str(request: Request) -> str:
        return "async text"

    @app.get("/aret/dict")
    async def aret_dict(request: Request) -> dict[str, Any]:
        return {"async": True}

    @app.get("/aret/list")
    async def aret_list(request: Request) -> list[int]:
        return [1, 2, 3]

    @app.get("/aret/none")
    async def aret_none(request: Request) -> None:
        return None

    @app.get("/aret/bad")
    async def aret_bad(request: Request) -> Any:
        return object()

    @app.get("/raises")
    def raises(request: Request) -> Any:
        raise RuntimeError("boom")

    @app.get("/araises")
    async def araises(request: Request) -> Any:
        raise RuntimeError("boom")

    class CallableHandler:
        async def __call__(self, request: Request) -> str:
            return "callable object"

    app.add_route("/callable", CallableHandler())
    return app


@pytest.fixture
def client(serve: Any) -> Any:
    srv = serve(build_app())
    with httpx.Client(base_url=srv.url(""), timeout=10) as c:
        yield c


# -- methods --------------------------------------------------------------------------


def test_get_static(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.text == "index"


def test_method_decorators(client: httpx.Client) -> None:
    r = client.post("/things", content=b"widget")
    assert r.status_code == 201
    assert r.json() == {"created": "widget"}
    assert client.put("/things").text == "put"
    assert client.patch("/things").text == "patch"
    r = client.delete("/things")
    assert r.status_code == 204
    assert r.content == b""


def test_route_with_methods_list(client: httpx.Client) -> None:
    assert client.get("/multi").text == "multi GET"
    assert client.post("/multi").text == "multi POST"
    assert client.put("/multi").status_code == 405


def test_add_route(client: httpx.Client) -> None:
    assert client.get("/added").text == "added"
    assert client.post("/added-post").text == "added"
    assert client.get("/added-post").status_code == 405


def test_callable_object_handler(client: httpx.Client) -> None:
    r = client.get("/callable")
    assert r.status_code == 200
    assert r.text == "callable object"


# -- path parameters --------------------------------------------------------------


def test_str_path_param(client: httpx.Client) -> None:
    r = client.get("/items/abc-123")
    assert r.status_code == 200
    assert r.json() == {"params": {"item_id": "abc-123"}}


def test_static_route_path_params_are_empty_and_per_request(client: httpx.Client) -> None:
    # A static route's path_params is made on first use (App.dispatch): never shared,
    # so what one handler writes into it is not seen by the next request.
    for _ in range(2):
        assert client.get("/static-params").json() == {"seen": {}}


def test_int_path_param_converted(client: httpx.Client) -> None:
    r = client.get("/users/42/posts/first-post")
    assert r.json() == {"params": {"uid": 42, "slug": "first-post"}, "uid_type": "int"}


def test_int_path_param_rejects_non_digits(client: httpx.Client) -> None:
    assert client.get("/users/abc/posts/x").status_code == 404


def test_str_param_does_not_span_slashes(client: httpx.Client) -> None:
    assert client.get("/items/a/b").status_code == 404
    assert client.get("/items/").status_code == 404


def test_path_converter_spans_slashes(client: httpx.Client) -> None:
    assert client.get("/files/a/b/c.txt").json() == {"rest": "a/b/c.txt"}


def test_percent_encoded_param_is_decoded(client: httpx.Client) -> None:
    r = client.get("/items/hello%20w%C3%B6rld")
    assert r.json() == {"params": {"item_id": "hello wörld"}}


def test_percent_encoded_static_path_matches_decoded_route(client: httpx.Client) -> None:
    r = client.get("/hello%20world")
    assert r.status_code == 200
    assert r.text == "spaced"


def test_percent_encoded_unicode_static_path(client: httpx.Client) -> None:
    r = client.get("/caf%C3%A9")
    assert r.status_code == 200
    assert r.text == "cafe"


def test_needlessly_encoded_static_path(client: httpx.Client) -> None:
    # %73 is "s": a needlessly encoded spelling of /ret/str
    r = client.get("/ret/%73tr")
    assert r.status_code == 200
    assert r.text == "héllo"


# -- 404 / 405 / HEAD ------------------------------------------------------------------


def test_unknown_path_404(client: httpx.Client) -> None:
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.text == "Not Found"
    # a 404 does not close the connection: the next request works
    assert client.get("/").status_code == 200


def test_wrong_method_405_with_allow(client: httpx.Client) -> None:
    r = client.post("/")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD"}
    r = client.get("/things")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"POST", "PUT", "PATCH", "DELETE"}


def test_wrong_method_on_dynamic_route_405(client: httpx.Client) -> None:
    r = client.delete("/items/1")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD"}


def test_head_on_post_only_route_405(client: httpx.Client) -> None:
    r = client.head("/added-post")
    assert r.status_code == 405
    assert "HEAD" not in r.headers["allow"]


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        assert chunk, data
        data += chunk
    return data


@pytest.mark.parametrize("path", ["/headed", "/async-headed"])
def test_head_answered_by_get_route(serve: Any, path: str) -> None:
    srv = serve(build_app())
    body = b"0123456789" if path == "/headed" else b"abcdef"
    with srv.connect() as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"\r\nx-custom: " in head
        assert f"content-length: {len(body)}\r\n".encode() in head.lower()
        # Same connection: the next bytes must be the GET's status line, i.e. the
        # HEAD response carried no body.
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 ")
    assert rest.endswith(body)


def test_pipelined_requests_ending_with_connection_close(run: Any) -> None:
    async def go() -> bytes:
        conn = MockConnection(build_app(), date_header=False)
        conn.feed(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /ret/str HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        return await conn.settle()

    out = run(go())
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.endswith("héllo".encode())


def test_head_via_httpx(client: httpx.Client) -> None:
    r = client.head("/items/7")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(b'{"params":{"item_id":"7"}}')


# -- return values ----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/ret", "/aret"])
def test_return_bytes(client: httpx.Client, prefix: str) -> None:
    r = client.get(f"{prefix}/bytes")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == (b"\x00\x01raw" if prefix == "/ret" else b"async-raw")


@pytest.mark.parametrize("prefix", ["/ret", "/aret"])
def test_return_str(client: httpx.Client, prefix: str) -> None:
    r = client.get(f"{prefix}/str")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == ("héllo" if prefix == "/ret" else "async text")


@pytest.mark.parametrize("prefix", ["/ret", "/aret"])
def test_return_dict_and_list(client: httpx.Client, prefix: str) -> None:
    r = client.get(f"{prefix}/dict")
    assert r.headers["content-type"] == "application/json"
    assert r.json() == ({"a": 1, "b": [True, None]} if prefix == "/ret" else {"async": True})
    r = client.get(f"{prefix}/list")
    assert r.headers["content-type"] == "application/json"
    assert r.json() == ([1, "two", {"three": 3}] if prefix == "/ret" else [1, 2, 3])


@pytest.mark.parametrize("prefix", ["/ret", "/aret"])
def test_return_none_is_204(client: httpx.Client, prefix: str) -> None:
    r = client.get(f"{prefix}/none")
    assert r.status_code == 204
    assert r.content == b""
    assert "content-length" not in r.headers


@pytest.mark.parametrize("path", ["/ret/bad", "/aret/bad", "/raises", "/araises"])
def test_unsupported_return_or_exception_is_500(serve: Any, path: str) -> None:
    srv = serve(build_app())
    with httpx.Client(base_url=srv.url(""), timeout=10) as c:
        r = c.get(path)
        assert r.status_code == 500
        assert r.text == "Internal Server Error"
        # the server keeps serving afterwards
        assert c.get("/").text == "index"


@pytest.mark.parametrize("path,expected", [("/users/me", {"id": "me"}), ("/a/1", {"y": 1})])
def test_method_mismatch_does_not_shadow_a_later_matching_route(
    serve: Any, path: str, expected: dict[str, Any]
) -> None:
    app = App()

    @app.post("/users/me")
    def update_me(request: Request) -> str:
        return "updated"

    @app.get("/users/{id}")
    def user(request: Request) -> dict[str, Any]:
        return {"id": request.path_params["id"]}

    @app.post("/a/{x}")
    def post_a(request: Request) -> str:
        return "posted"

    @app.get("/a/{y:int}")
    def get_a(request: Request) -> dict[str, Any]:
        return {"y": request.path_params["y"]}

    srv = serve(app)
    with httpx.Client(timeout=10) as c:
        # the POST routes still work
        assert c.post(srv.url(path)).text in ("updated", "posted")
        r = c.get(srv.url(path))
        assert r.status_code == 200
        assert r.json() == expected


def test_route_path_must_start_with_slash() -> None:
    app = App()
    with pytest.raises(ValueError):
        app.add_route("nope", lambda r: "x")


# -- MockConnection: pipelined mix of sync and async handlers keeps order -------------


def test_pipelined_sync_and_async_responses_in_order(run: Any) -> None:
    async def go() -> bytes:
        conn = MockConnection(build_app(), date_header=False, server_header=False)
        conn.feed(
            b"GET /aret/str HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /ret/str HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /aret/dict HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        return await conn.settle(50)

    out = run(go())
    bodies = [b"async text", "héllo".encode(), b"Not Found", b'{"async":true}']
    positions = [out.find(b) for b in bodies]
    assert all(p >= 0 for p in positions), out
    assert positions == sorted(positions)
    assert out.count(b"HTTP/1.1 ") == 4
