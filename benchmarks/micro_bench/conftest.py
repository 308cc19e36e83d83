"""Micro-benchmarks of the hot paths (pytest-benchmark), kept out of the test run:

    python -m pytest benchmarks/micro_bench                      # measure
    python -m pytest benchmarks/micro_bench --benchmark-disable  # run each once (smoke)
    python -m pytest benchmarks/micro_bench --benchmark-autosave # save, then compare with
    python -m pytest benchmarks/micro_bench --benchmark-compare  # ... the last saved run

Engine benchmarks drive one HTTPConnection over a transport that swallows writes,
so they measure the server's own Python work per request, not the kernel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from blazeasgi.cli import to_served_app
from blazeasgi.config import Config
from blazeasgi.engine.connection import HTTPConnection
from blazeasgi.engine.server import ServerState
from blazeasgi.settings import InterfaceSettings

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


class NullTransport(asyncio.Transport):
    """Counts writes, sends nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.bytes = 0

    def write(self, data: Any) -> None:
        self.writes += 1
        self.bytes += len(data)

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self.write(chunk)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def connection(loop: asyncio.AbstractEventLoop) -> Callable[[Any], tuple[HTTPConnection, NullTransport]]:
    """connection(app) -> (an HTTPConnection serving app, its transport), warmed up."""

    def make(app: Any) -> tuple[HTTPConnection, NullTransport]:
        served = to_served_app(app, InterfaceSettings(lifespan="off"))
        loop.run_until_complete(served.startup())
        state = ServerState(Config(access_log=False), served.dispatch, loop)
        conn = HTTPConnection(state)
        transport = NullTransport()
        conn.connection_made(transport)
        for _ in range(100):
            conn.data_received(REQUEST)
        loop.run_until_complete(asyncio.sleep(0))
        assert transport.writes, "the app did not answer"
        return conn, transport

    return make
