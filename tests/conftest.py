"""Shared fixtures: every test runs under uvloop and plain asyncio.

Two ways to reach the engine:
  * ``serve(app, **config)``: a real server on 127.0.0.1:<free port> in a thread
    with its own event loop; yields the port. Talk to it with raw sockets, httpx
    or h11.
  * ``MockConnection``: one HTTPConnection over an in-memory transport, driven on
    the test's own loop; feed bytes, read back exactly what was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from blazeasgi.cli import to_served_app
from blazeasgi.config import Config
from blazeasgi.engine.connection import HTTPConnection
from blazeasgi.engine.server import Server, ServerState, bind_socket
from blazeasgi.engine.tasks import RunnerPool, Suspended
from blazeasgi.settings import InterfaceSettings

from .helpers.browser import browser  # noqa: F401  (a fixture: headless Chromium)
from .helpers.cli import ROOT, Blaze
from .helpers.tls import certs  # noqa: F401  (a fixture: the TLS and HTTP/2 tests)
from .helpers.workers import masters

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        assert uvloop is not None
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


@pytest.fixture(params=LOOPS)
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(loop_kind: str) -> Iterator[Callable[[Any], Any]]:
    """run(coro) -> result, on a fresh loop of the parametrised kind."""
    loop = new_loop(loop_kind)
    try:
        yield loop.run_until_complete
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class RunningServer:
    def __init__(self, server: Server, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.port = port
        self.loop = loop

    @property
    def state(self) -> ServerState:
        assert self.server.state is not None
        return self.server.state

    def connect(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return sock

    def slow_reader(self, timeout: float = 10.0) -> socket.socket:
        """A connected client with a small receive buffer, for stalled-reader tests."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(timeout)
        try:
            sock.connect(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        return sock

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def serve(loop_kind: str) -> Iterator[Callable[..., RunningServer]]:
    """serve(app, **config_fields) -> RunningServer; stopped at test end."""
    started: list[tuple[threading.Thread, Server, asyncio.AbstractEventLoop]] = []
    errors: list[BaseException] = []

    def start(app: Any, lifespan: str = "auto", bind: str = "127.0.0.1", **config: Any) -> RunningServer:
        """``bind``: the address to listen on (the client connects to 127.0.0.1)."""
        config.setdefault("access_log", False)
        cfg = Config(**config)
        served = to_served_app(app, InterfaceSettings(cfg.root_path, lifespan))
        sock = bind_socket(bind, 0)
        port = sock.getsockname()[1]
        server = Server(served, cfg)
        loop = new_loop(loop_kind)
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)

            async def go() -> None:
                task = asyncio.ensure_future(server.serve([sock], install_signal_handlers=False))
                waiter = asyncio.ensure_future(server.started.wait())
                await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if not task.done():  # a failed start is reported by the except below
                    ready.set()
                await task

            try:
                loop.run_until_complete(go())
            except BaseException as exc:  # surfaced to the test
                errors.append(exc)
                ready.set()
            finally:
                sock.close()
                loop.close()

        thread = threading.Thread(target=main, daemon=True)
        thread.start()
        assert ready.wait(10), "server did not start"
        if errors:
            raise errors[0]
        started.append((thread, server, loop))
        return RunningServer(server, port, loop)

    yield start
    for thread, server, loop in started:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(server.request_stop)
        thread.join(15)


class MockTransport:
    """Records writes and close/pause calls; behaves like an open TCP transport."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.closed = False
        self.reading = True
        self.protocol: Any = None  # an HTTPConnection, or what it handed over to

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.buffer += data

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.write(part)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol is not None:
                asyncio.get_event_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return False  # as over TLS: transports.linger closes at once

    def set_protocol(self, protocol: Any) -> None:  # the h2c hand-over
        self.protocol = protocol

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class MockConnection:
    """An HTTPConnection on the running loop over a MockTransport."""

    def __init__(self, app: Any, state: ServerState | None = None, **config: Any) -> None:
        """``state``: another MockConnection's, to be one more connection of its server."""
        config.setdefault("access_log", False)
        self.config = Config(**config) if state is None else state.config
        self.app = to_served_app(app, InterfaceSettings(self.config.root_path, "off"))
        if state is None:
            state = ServerState(self.config, self.app.dispatch, asyncio.get_running_loop())
        self.state = state
        self.transport = MockTransport()
        self.protocol = HTTPConnection(self.state)
        self.transport.protocol = self.protocol
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    def feed(self, data: bytes) -> None:
        self.protocol.data_received(data)

    async def settle(self, rounds: int = 20) -> bytes:
        """Let suspended handlers run, then return everything written so far."""
        for _ in range(rounds):
            await asyncio.sleep(0)
        return self.transport.take()


async def started_pool(shared: Suspended | None = None) -> RunnerPool:
    """A pool whose first runner has started, as on a server that served a request."""
    runners = RunnerPool(asyncio.get_running_loop(), shared)

    async def nothing() -> None:
        pass

    runners.run(nothing(), lambda value, exc: None)  # waits for the first runner
    for _ in range(2):
        await asyncio.sleep(0)
    assert len(runners.idle) == 1
    return runners


@pytest.fixture
def collect_garbage() -> Iterator[None]:
    """Collect each test's closed loops now, in this thread, once its servers have
    stopped (CPython 3.11's ast.parse, used when tracebacks are formatted, is not
    thread-safe: a collection in a server thread could race pytest's reporting).
    Modules that start servers in threads use it for every test (``pytestmark``)."""
    yield
    gc.collect()


# -- `python -m blazeasgi` in subprocesses (tests/helpers/cli.py, workers.py) -----------------
@pytest.fixture
def blaze() -> Iterator[object]:
    """start(*args, cwd=ROOT) -> Blaze: ``python -m blazeasgi`` subprocesses, always killed."""
    started: list[Blaze] = []

    def start(*args: str, cwd: Path = ROOT) -> Blaze:
        b = Blaze(list(args), cwd)
        started.append(b)
        return b

    yield start
    for b in started:
        b.kill()


#: start(*args, cwd=, env=, pass_fds=) -> Master (tests/helpers/workers.py).
master = pytest.fixture(masters, name="master")
