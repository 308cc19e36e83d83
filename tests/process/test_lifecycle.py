"""blazeasgi.lifecycle: uvicorn's startup lines, held back while a startup may still fail."""

from __future__ import annotations

import asyncio
import logging

import pytest

from blazeasgi.asgi.adapter import ASGIAdapter
from blazeasgi.lifecycle import Announced, HeldLines, runs_lifespan
from blazeasgi.native.app import App
from blazeasgi.settings import InterfaceSettings


async def _asgi(scope: object, receive: object, send: object) -> None:
    return None


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "blazeasgi.error"]


def test_held_lines_come_before_any_other_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="blazeasgi.error")

    async def main() -> None:
        held = HeldLines(asyncio.get_running_loop(), delay=60)
        held.add("first")
        logging.getLogger("blazeasgi.error").info("second")
        logging.getLogger("blazeasgi.error").info("third")

    asyncio.run(main())
    assert _messages(caplog) == ["first", "second", "third"]


def test_held_lines_show_after_the_delay_or_not_at_all(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="blazeasgi.error")

    async def main() -> None:
        slow = HeldLines(asyncio.get_running_loop(), delay=0.01)
        slow.add("slow startup")
        await asyncio.sleep(0.05)
        assert _messages(caplog) == ["slow startup"]
        fast = HeldLines(asyncio.get_running_loop(), delay=0.01)
        fast.add("never shown")
        fast.drop()
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert _messages(caplog) == ["slow startup"]
    assert not logging.getLogger("blazeasgi.error").filters


def test_failed_startup_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="blazeasgi.error")
    app = App(on_startup=[lambda: 1 / 0])  # type: ignore[list-item, func-returns-value]

    async def main() -> None:
        with pytest.raises(ZeroDivisionError):
            await Announced(app).startup()
        logging.getLogger("blazeasgi.error").info("after")  # would flush held lines
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert _messages(caplog) == ["after"]


def test_startup_and_shutdown_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="blazeasgi.error")
    announced = Announced(App(on_startup=[lambda: None]), process=False)

    async def main() -> None:
        await announced.startup()
        await announced.shutdown()

    asyncio.run(main())
    assert _messages(caplog) == [
        "Waiting for application startup.",
        "Application startup complete.",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
    ]


def test_runs_lifespan() -> None:
    assert not runs_lifespan(App())
    assert runs_lifespan(App(on_shutdown=[lambda: None]))
    assert runs_lifespan(ASGIAdapter(_asgi))
    assert not runs_lifespan(ASGIAdapter(_asgi, InterfaceSettings(lifespan="off")))
