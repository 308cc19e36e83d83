"""WSGI apps (Flask, Django's WSGI handler...) served through the ASGI adapter.

The WSGI callable runs in a thread pool; the request body is read first (in
memory, spilled to a temporary file past 1 MiB) and the response goes back through
``send`` from the worker thread, which waits for each message to be accepted, so a
slow client slows the app down instead of filling memory, and a client that left
stops the app's iteration (``send`` raises an ``OSError``).

The environ is built the way uvicorn's WSGI middleware builds it (the same
``SCRIPT_NAME``/``PATH_INFO`` split, headers joined with ``,``), with the PEP 3333
details it misses: ``SERVER_PORT`` is a string, header values are latin-1,
``wsgi.input_terminated`` is set, and the iterable's ``close()`` is always called.

Why not asgiref's ``WsgiToAsgi``: it runs every request on one shared thread
(``sync_to_async`` is thread-sensitive by default), so one slow request stalls all
of them, and it never calls the iterable's ``close()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import IO, Any

from ..engine.errors import ClientDisconnected
from ..types import Message, Receive, Scope, Send

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: Request bodies past this size are spooled to a temporary file.
SPOOL_SIZE = 1 << 20


def build_environ(scope: Scope, body: IO[bytes]) -> dict[str, Any]:
    script_name = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    path_info = scope["path"].encode("utf-8").decode("latin-1")
    if path_info.startswith(script_name):
        path_info = path_info[len(script_name) :]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client is not None:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name == "content-length":
            key = "CONTENT_LENGTH"
        elif name == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if key in environ:
            value = environ[key] + "," + value
        environ[key] = value
    return environ


class WSGIAdapter:
    """An ASGI 3 app running a WSGI app in a pool of ``workers`` threads."""

    def __init__(self, app: WSGIApp, workers: int = 10) -> None:
        self.app = app
        self.workers = workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="wsgi")
        return self._executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"WSGI apps serve HTTP only, not {scope['type']!r}")
        body = await _read_body(receive)
        try:
            environ = build_environ(scope, body)
            loop = asyncio.get_running_loop()
            responder = _Responder(loop, send)
            await loop.run_in_executor(self.executor, responder.run, self.app, environ)
        finally:
            body.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._executor is not None:
                    self._executor.shutdown(wait=False)
                    self._executor = None
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Receive) -> IO[bytes]:
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnected("client disconnected before the request body was read")
    if not message.get("more_body", False):
        return io.BytesIO(message.get("body", b""))
    body: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE)
    try:
        body.write(message.get("body", b""))
        while message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnected("client disconnected before the request body was read")
            body.write(message.get("body", b""))
        body.seek(0)
    except BaseException:
        body.close()
        raise
    return body


class _Responder:
    """One request, on its worker thread: start_response, write and the iterable."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Send) -> None:
        self.loop = loop
        self.send = send
        self.start: Message | None = None
        self.head_sent = False
        self.length: int | None = None  # declared Content-Length
        self.sent = 0

    # -- PEP 3333 ----------------------------------------------------------------------
    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.start is not None:
            raise RuntimeError("start_response() called a second time without exc_info")
        code = status.split(" ", 1)[0]
        if not (len(code) == 3 and code.isdigit()):
            raise RuntimeError(f"Invalid WSGI status {status!r}")
        raw: list[tuple[bytes, bytes]] = []
        self.length = None
        for name, value in headers:
            raw.append((name.encode("latin-1"), value.encode("latin-1")))
            if name.lower() == "content-length":
                self.length = int(value)
        self.start = {"type": "http.response.start", "status": int(code), "headers": raw}
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write`` callable: sent at once."""
        if self.start is None:
            raise RuntimeError("write() called before start_response()")
        self._deliver(self._body(data, more=True))

    # -- the worker thread's job ----------------------------------------------------------
    def run(self, app: WSGIApp, environ: dict[str, Any]) -> None:
        result = app(environ, self.start_response)
        try:
            if isinstance(result, (list, tuple)):
                # The whole body is known: one trip to the event loop.
                messages: list[Message] = []
                for chunk in result:
                    messages += self._body(chunk, more=True)
                    if self._full():
                        break
                if self.length is not None and len(messages) == 2:
                    # start + one body of a declared length: marked final, the
                    # engine sends head and body in one write (same bytes).
                    messages[1]["more_body"] = False
                else:
                    messages += self._end()
                self._deliver(messages)
                return
            for chunk in result:
                if chunk:
                    self._deliver(self._body(chunk, more=True))
                    if self._full():
                        break
            self._deliver(self._end())
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _full(self) -> bool:
        return self.length is not None and self.sent >= self.length

    def _head(self) -> list[Message]:
        if self.head_sent:
            return []
        if self.start is None:
            raise RuntimeError("WSGI app returned without calling start_response()")
        self.head_sent = True
        return [self.start]

    def _body(self, data: bytes, more: bool) -> list[Message]:
        if not data:
            return []
        if self.length is not None:  # never more than the app declared (PEP 3333)
            data = data[: max(0, self.length - self.sent)]
        self.sent += len(data)
        return [*self._head(), {"type": "http.response.body", "body": data, "more_body": more}]

    def _end(self) -> list[Message]:
        return [*self._head(), {"type": "http.response.body", "body": b"", "more_body": False}]

    def _deliver(self, messages: list[Message]) -> None:
        if not messages:
            return
        future = asyncio.run_coroutine_threadsafe(_send_all(self.send, messages), self.loop)
        while True:
            try:
                future.result(timeout=1.0)
                return
            except TimeoutError:
                if self.loop.is_closed():  # pragma: no cover - the server went away
                    future.cancel()
                    raise ClientDisconnected("server stopped") from None


async def _send_all(send: Callable[[Message], Awaitable[None]], messages: list[Message]) -> None:
    for message in messages:
        await send(message)
