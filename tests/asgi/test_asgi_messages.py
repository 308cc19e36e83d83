"""ASGI receive/send as an application uses them, and asyncio/anyio inside handlers."""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from typing import Any

import anyio
import pytest

from ..helpers.asgi import TIMEOUT, Raw, close_socket, request, respond

Scope = dict[str, Any]


# -- a small raw HTTP/1.1 client: sees exactly what the server wrote -----------------------


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


# -- receive() ------------------------------------------------------------------------------
def test_chunked_upload_arrives_as_more_body_messages(serve) -> None:
    messages: queue.Queue[dict[str, Any]] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            messages.put(dict(message))
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await respond(send, body)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        first = messages.get(timeout=TIMEOUT)
        assert first == {"type": "http.request", "body": b"hello", "more_body": True}
        c.send(b"6\r\n world\r\n")
        second = messages.get(timeout=TIMEOUT)
        assert second == {"type": "http.request", "body": b" world", "more_body": True}
        c.send(b"0\r\n\r\n")
        resp = c.response()
    rest = []
    while not messages.empty():
        rest.append(messages.get())
    assert rest == [{"type": "http.request", "body": b"", "more_body": False}]
    assert resp.status == 200
    assert resp.body == b"hello world"


def test_body_with_head_is_one_message(serve) -> None:
    messages: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        messages.append(dict(await receive()))
        await respond(send)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/", "POST", b"x" * 1000))
        assert c.response().status == 200
        c.send(request("/"))
        assert c.response().status == 200
    assert messages == [
        {"type": "http.request", "body": b"x" * 1000, "more_body": False},
        {"type": "http.request", "body": b"", "more_body": False},
    ]


def test_expect_100_continue_sent_when_app_reads_body(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, await read_body(receive))

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(b"PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert c.head() == (100, [])
        c.send(b"hello")
        resp = c.response()
    assert (resp.status, resp.body) == (200, b"hello")


def test_receive_after_response_is_disconnect(serve) -> None:
    after: queue.Queue[dict[str, Any]] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await read_body(receive)
        await respond(send)
        after.put(dict(await receive()))

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/", "POST", b"abc"))
        assert c.response().status == 200
        assert after.get(timeout=TIMEOUT) == {"type": "http.disconnect"}
        # The connection stays usable.
        c.send(request("/"))
        assert c.response().status == 200


@pytest.mark.parametrize("how", ["rst", "fin"])
def test_receive_waits_for_client_disconnect(serve, how: str) -> None:
    events: queue.Queue[Any] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await read_body(receive)
        events.put("body read")
        events.put(dict(await receive()))

    srv = serve(app, lifespan="off", graceful_shutdown_timeout=0.5)
    c = Raw(srv.port)
    c.send(request("/", "POST", b"abc"))
    assert events.get(timeout=TIMEOUT) == "body read"
    with pytest.raises(queue.Empty):
        events.get(timeout=0.2)  # nothing yet: the client is still there
    close_socket(c, how)
    try:
        got = events.get(timeout=1)
    except queue.Empty:
        got = None
    assert got == {"type": "http.disconnect"}


@pytest.mark.parametrize("how", ["rst", "fin"])
def test_client_leaving_mid_body_is_disconnect(serve, how: str) -> None:
    events: queue.Queue[Any] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            events.put(dict(message))
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                return

    srv = serve(app, lifespan="off", graceful_shutdown_timeout=0.5)
    c = Raw(srv.port)
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf")
    assert events.get(timeout=TIMEOUT) == {"type": "http.request", "body": b"half", "more_body": True}
    close_socket(c, how)
    try:
        got = events.get(timeout=1)
    except queue.Empty:
        got = None
    assert got == {"type": "http.disconnect"}


# -- send() misuse the app can catch -----------------------------------------------------------
async def _body_before_start(send: Any) -> None:
    await send({"type": "http.response.body", "body": b"x"})


async def _start_twice(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.start", "status": 201, "headers": []})


async def _unknown_type(send: Any) -> None:
    await send({"type": "http.response.bogus"})


async def _status_too_small(send: Any) -> None:
    await send({"type": "http.response.start", "status": 99, "headers": []})


async def _status_too_big(send: Any) -> None:
    await send({"type": "http.response.start", "status": 600, "headers": []})


async def _status_is_str(send: Any) -> None:
    await send({"type": "http.response.start", "status": "200", "headers": []})


@pytest.mark.parametrize(
    ("misuse", "words"),
    [
        (_body_before_start, ["http.response.start"]),
        (_start_twice, ["http.response.start", "already"]),
        (_unknown_type, ["http.response.bogus"]),
        (_status_too_small, ["99"]),
        (_status_too_big, ["600"]),
        (_status_is_str, ["'200'"]),
    ],
)
def test_send_misuse_raises_clear_error(serve, misuse: Any, words: list[str]) -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await misuse(send)
        except Exception as exc:
            errors.append(exc)
        if misuse is not _start_twice:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"recovered"})

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
    assert (resp.status, resp.body) == (200, b"recovered")
    assert b"x-injected" not in [n for n, _ in resp.headers]
    [exc] = errors
    assert isinstance(exc, RuntimeError)
    for word in words:
        assert word in str(exc)


def test_body_after_response_complete_raises(serve) -> None:
    errors: queue.Queue[BaseException] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, b"done")
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except Exception as exc:
            errors.put(exc)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        assert resp.body == b"done"
        exc = errors.get(timeout=TIMEOUT)
        assert isinstance(exc, RuntimeError)
        assert "completed" in str(exc) or "complete" in str(exc)
        c.send(request("/"))
        assert c.response().body == b"done"  # nothing stray was written in between


# -- errors the app does not handle: the client gets a 500 or a closed connection ------------------
async def _returns_without_response(send: Any) -> None:
    return None


async def _raises_before_start(send: Any) -> None:
    raise ValueError("boom")


@pytest.mark.parametrize(
    "misuse",
    [_returns_without_response, _raises_before_start, _body_before_start, _unknown_type, _status_too_big],
)
def test_unhandled_error_before_start_is_500_and_close(serve, misuse: Any) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await misuse(send)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        assert resp.status == 500
        assert resp.body == b"Internal Server Error"
        assert resp.get(b"connection") == b"close"
        assert c.rest() == b""  # and the server closes


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-a", b"1\r\nx-injected: yes")],
        [(b"x-a", b"1\nx-injected: yes")],
        [(b"x-a", b"1\rx-injected: yes")],
        [(b"x-a", b"1\x00")],
        [(b"x-injected: yes\r\nx-a", b"1")],
        [(b"bad name", b"1")],
        [(b"", b"1")],
    ],
)
def test_invalid_response_header_never_splits_response(serve, headers: Any) -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await respond(send, b"body", headers=headers)
        except Exception as exc:
            errors.append(exc)
            raise

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        rest = c.rest()
    assert resp.status == 500
    assert resp.get(b"connection") == b"close"
    assert b"injected" not in b"".join(n + v for n, v in resp.headers) + resp.body + rest
    assert rest == b""
    [exc] = errors  # raised by send() to the app, naming the header
    assert isinstance(exc, RuntimeError)
    assert "header" in str(exc)


async def _raises_after_start(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise ValueError("boom")


async def _raises_after_partial_body(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise ValueError("boom")


async def _returns_after_partial_body(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})


@pytest.mark.parametrize(
    "misuse", [_raises_after_start, _raises_after_partial_body, _returns_after_partial_body]
)
def test_error_after_start_closes_connection(serve, misuse: Any) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await misuse(send)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        status, headers = c.head()
        rest = c.rest()  # EOF: the server closes the connection
    if status == 500:
        # The head was still held back by the server: it may send a 500 instead.
        assert misuse is _raises_after_start
        assert dict(headers).get(b"connection") == b"close"
    else:
        # The 200 head went out: the body must not look complete.
        assert status == 200
        assert not rest.endswith(b"0\r\n\r\n")
        if misuse is not _raises_after_start:
            assert b"partial" in rest


# -- response framing --------------------------------------------------------------------------
def test_streamed_body_is_chunked(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"bb", b"", b"ccc"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        assert resp.get(b"transfer-encoding") == b"chunked"
        assert resp.get(b"content-length") is None
        assert resp.raw_body == b"1\r\na\r\n2\r\nbb\r\n3\r\nccc\r\n0\r\n\r\n"
        assert resp.body == b"abbccc"
        c.send(request("/"))  # still keep-alive
        assert c.response().body == b"abbccc"


def test_streamed_body_http10_is_close_delimited(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        status, headers = c.head()
        body = c.rest()
    names = [n for n, _ in headers]
    assert status == 200
    assert b"transfer-encoding" not in names
    assert body == b"onetwo"


def test_declared_content_length_is_honoured(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"Content-Length", b"10")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        await send({"type": "http.response.body", "body": b"world"})

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        assert resp.get(b"content-length") == b"10"
        assert resp.get(b"transfer-encoding") is None
        assert resp.body == b"helloworld"
        c.send(request("/"))
        assert c.response().body == b"helloworld"


@pytest.mark.parametrize(("declared", "parts"), [(10, [b"hello"]), (3, [b"hello"]), (4, [b"ab", b"cde"])])
def test_wrong_content_length_never_overruns_and_closes(serve, declared: int, parts: list[bytes]) -> None:
    errors: queue.Queue[BaseException] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"content-length", str(declared).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            for i, part in enumerate(parts):
                more = i < len(parts) - 1
                await send({"type": "http.response.body", "body": part, "more_body": more})
        except Exception as exc:
            errors.put(exc)
            raise

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        status, headers = c.head()
        body = c.rest()
    assert status == 200
    assert dict(headers)[b"content-length"] == str(declared).encode()
    assert len(body) < declared  # never more than declared, never a silently "complete" body
    assert isinstance(errors.get(timeout=TIMEOUT), RuntimeError)


def test_app_transfer_encoding_is_ignored(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"transfer-encoding", b"chunked"), (b"x-app", b"1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/stream":
            await send({"type": "http.response.body", "body": b"hel", "more_body": True})
        await send({"type": "http.response.body", "body": b"lo"})

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        assert resp.get(b"transfer-encoding") is None
        assert resp.get(b"content-length") == b"2"
        assert resp.get(b"x-app") == b"1"
        assert resp.body == b"lo"
        c.send(request("/stream"))
        resp = c.response()
        assert resp.get_all(b"transfer-encoding") == [b"chunked"]
        assert resp.body == b"hello"


def test_app_connection_close_is_honoured(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, b"bye", headers=[(b"connection", b"close")])

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        assert resp.get_all(b"connection") == [b"close"]
        assert c.rest() == b""


def test_head_and_no_body_statuses(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        status = int(scope["path"][1:] or 200)
        await respond(send, b"" if status == 204 else b"hello", status=status)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/", "HEAD"))
        resp = c.response("HEAD")
        assert (resp.status, resp.get(b"content-length")) == (200, b"5")
        c.send(request("/204"))
        resp = c.response()
        assert resp.status == 204
        assert resp.get(b"content-length") is None
        c.send(request("/"))  # nothing stray was written after the bodiless responses
        assert c.response().body == b"hello"


def test_many_headers_and_duplicate_set_cookie(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"X-Mixed-Case", b"Value")]
        await respond(send, b"", headers=headers)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
    assert resp.get_all(b"set-cookie") == [b"a=1", b"b=2"]
    assert resp.get(b"x-mixed-case") == b"Value"


@pytest.mark.parametrize(
    "headers",
    [
        [[b"x-a", b"1"], [b"x-b", b"2"]],  # lists, not tuples
        ((b"x-a", b"1"), (b"x-b", b"2")),  # a tuple
        [(b"X-A", b"1"), (b"X-B", b"2")],  # upper case names
    ],
)
def test_header_shapes(serve, headers: Any) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, b"", headers=headers)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
    assert (resp.get(b"x-a"), resp.get(b"x-b")) == (b"1", b"2")


def test_reused_and_mutated_header_list_is_not_served_stale(serve) -> None:
    shared: list[tuple[bytes, bytes]] = [(b"x-count", b"0")]

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        n = scope["query_string"]
        shared[0] = (b"x-count", n)  # same list object, new contents
        if n == b"3":
            shared.append((b"x-extra", b"yes"))
        await respond(send, b"", headers=shared)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        for n in (b"1", b"1", b"2", b"3", b"4"):
            c.send(request("/?" + n.decode()))
            resp = c.response()
            assert resp.get(b"x-count") == n
            assert resp.get(b"x-extra") == (b"yes" if n in (b"3", b"4") else None)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_send_after_client_disconnect_raises_oserror(serve, how: str) -> None:
    events: queue.Queue[Any] = queue.Queue()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        try:
            for _ in range(300):  # a stream that only ends when the client leaves
                await asyncio.sleep(0.01)
                await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
        except BaseException as exc:
            events.put(exc)
            raise
        events.put("no error")

    srv = serve(app, lifespan="off", graceful_shutdown_timeout=0.5)
    c = Raw(srv.port)
    c.send(request("/"))
    c.until(b"first")
    close_socket(c, how)
    exc = events.get(timeout=TIMEOUT)
    assert isinstance(exc, OSError), exc


def test_large_streamed_response_arrives_intact(serve) -> None:
    part = bytes(range(256)) * 256  # 64 KiB

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(64):  # 4 MiB: more than the write buffer holds
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        resp = c.response()
        assert resp.body == part * 64
        c.send(request("/"))
        assert len(c.response().body) == len(part) * 64


def test_pipelined_requests_ending_in_close(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, scope["path"].encode())

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/one") + request("/two", close=True))
        try:
            bodies = [c.response().body, c.response().body]
        except EOFError:
            bodies = []
    assert bodies == [b"/one", b"/two"]


# -- asyncio and anyio inside handlers -----------------------------------------------------------
def test_current_task_is_a_real_task_before_and_after_suspending(serve) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await read_body(receive)
        before = asyncio.current_task()
        if scope["path"] == "/suspend":
            await asyncio.sleep(0.01)
        after = asyncio.current_task()
        seen.append((before, after, before.done() if before else None))
        await respond(send)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        for path in ("/", "/suspend", "/suspend", "/"):
            c.send(request(path))
            assert c.response().status == 200
    for before, after, done_while_running in seen:
        assert isinstance(before, asyncio.Task)
        assert after is before
        assert done_while_running is False


var: contextvars.ContextVar[str] = contextvars.ContextVar("var")


@pytest.mark.parametrize("pipelined", [False, True])
def test_contextvars_do_not_leak_between_requests(serve, pipelined: bool) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        before = var.get("unset")
        var.set(scope["path"])
        if scope["path"].startswith("/suspend"):
            await asyncio.sleep(0.01)
        await respond(send, f"{before}|{var.get('unset')}".encode())

    srv = serve(app, lifespan="off")
    paths = ["/a", "/suspend1", "/b", "/suspend2", "/suspend3", "/c"]
    with Raw(srv.port) as c:
        if pipelined:
            c.send(b"".join(request(p) for p in paths))
            bodies = [c.response().body for _ in paths]
        else:
            bodies = []
            for p in paths:
                c.send(request(p))
                bodies.append(c.response().body)
    assert bodies == [f"unset|{p}".encode() for p in paths]


@pytest.mark.parametrize(
    "first_on_connection",
    [True, False],
)
def test_current_task_cancel_before_first_suspension(serve, first_on_connection: bool) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        result = b"plain"
        if scope["path"] == "/cancel":
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            try:
                await asyncio.sleep(1)
                result = b"not cancelled"
            except asyncio.CancelledError:
                task.uncancel()
                result = b"cancelled"
        await respond(send, result)

    srv = serve(app, lifespan="off", graceful_shutdown_timeout=0.5)
    paths = ["/cancel", "/"] if first_on_connection else ["/", "/cancel", "/"]
    bodies = []
    with Raw(srv.port) as c:
        c.sock.settimeout(1)
        try:
            for path in paths:
                c.send(request(path))
                bodies.append(c.response().body)
        except TimeoutError:
            pass
    expected = {"/cancel": b"cancelled", "/": b"plain"}
    assert bodies == [expected[p] for p in paths]


def test_anyio_to_thread_in_handler(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        here = threading.get_ident()
        there = await anyio.to_thread.run_sync(threading.get_ident)
        await respond(send, b"other thread" if there != here else b"same thread")

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        for _ in range(2):
            c.send(request("/"))
            assert c.response().body == b"other thread"


def test_timeouts_entered_before_first_suspension(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["path"]
        result = b"not timed out"
        if kind == "/fail_after":
            try:
                with anyio.fail_after(0.05):
                    await asyncio.sleep(10)
            except TimeoutError:
                result = b"timed out"
        elif kind == "/move_on_after":
            with anyio.move_on_after(0.05) as scope_:
                await anyio.sleep(10)
            if scope_.cancelled_caught:
                result = b"timed out"
        elif kind == "/asyncio_timeout":
            try:
                async with asyncio.timeout(0.05):
                    await asyncio.sleep(10)
            except TimeoutError:
                result = b"timed out"
        # The task is usable afterwards: no cancellation left pending.
        await asyncio.sleep(0)
        await respond(send, result)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        for path in ("/fail_after", "/move_on_after", "/asyncio_timeout", "/fail_after"):
            c.send(request(path))
            assert c.response().body == b"timed out", path


def test_cancel_scope_spanning_a_suspension(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        with anyio.CancelScope() as outer:  # entered before the handler's first suspension
            await anyio.sleep(0.01)  # ... and exited after it
        with anyio.CancelScope() as cancelled:
            await anyio.sleep(0)
            cancelled.cancel()
            await anyio.sleep(10)
        await anyio.sleep(0)
        body = f"{outer.cancelled_caught}|{cancelled.cancelled_caught}".encode()
        await respond(send, body)

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        for _ in range(2):
            c.send(request("/"))
            assert c.response().body == b"False|True"


def test_anyio_task_group_in_handler(serve) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        results: list[int] = []

        async def child(n: int) -> None:
            await anyio.sleep(0.01 * n)
            results.append(n)

        async with anyio.create_task_group() as tg:
            for n in (3, 1, 2):
                tg.start_soon(child, n)
        await respond(send, repr(results).encode())

    srv = serve(app, lifespan="off")
    with Raw(srv.port) as c:
        c.send(request("/"))
        assert c.response().body == b"[1, 2, 3]"
