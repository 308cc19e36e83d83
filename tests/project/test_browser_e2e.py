"""End to end in a real browser: headless Chromium drives the demo's real-time page.

The page (examples/realtime.py, mounted by examples/demo.py) opens an EventSource
and two WebSockets: the native chat and the FastAPI echo of the demo's ASGI side.
The test asserts what the page itself received, as a person would see it.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the ``selenium``
package; skipped (saying which is missing) without them.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import uvloop
from ..helpers.browser import MISSING

pytestmark = pytest.mark.skipif(bool(MISSING), reason="browser test needs " + ", ".join(MISSING))

# One browser run is enough: serve the demo on uvloop when installed (the default).
LOOP = ["uvloop"] if uvloop is not None else ["asyncio"]


@pytest.mark.parametrize("loop_kind", LOOP)
def test_demo_page_receives_sse_events_and_websocket_echoes(serve, browser: Any, tmp_path: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from examples.demo import app

    srv = serve(app)
    browser.get(srv.url("/realtime?interval=0.1"))

    def received(driver: Any) -> Any:
        state = driver.execute_script("return window.realtime")
        ok = (
            len(state["sse"]) >= 3
            and "echo: hello from the browser" in state["ws"]
            and "asgi echo: hello, ASGI" in state["asgi"]
        )
        return state if ok else False

    try:
        state = WebDriverWait(browser, 20, poll_frequency=0.1).until(received)
    except Exception:
        browser.save_screenshot(str(tmp_path / "realtime.png"))
        raise
    # SSE ticks arrive in order, parsed by the page.
    ticks = [event["tick"] for event in state["sse"]]
    assert ticks[:3] == [0, 1, 2]
    assert state["ws"][0].startswith("welcome, you are guest-")

    # Typing into the chat form sends over the WebSocket; the echo comes back.
    field = browser.find_element(By.ID, "chat-input")
    field.send_keys("typed in the browser")
    browser.find_element(By.CSS_SELECTOR, "#chat-form button").click()
    WebDriverWait(browser, 10, poll_frequency=0.1).until(
        lambda d: "echo: typed in the browser" in d.execute_script("return window.realtime.ws")
    )

    # And the person looking at the page sees it all.
    assert browser.find_element(By.ID, "sse-status").text == "open"
    assert browser.find_element(By.ID, "ws-status").text == "open"
    assert browser.find_element(By.ID, "asgi-status").text == "open"
    assert "echo: typed in the browser" in browser.find_element(By.ID, "ws-log").text
    assert "asgi echo: hello, ASGI" in browser.find_element(By.ID, "asgi-log").text
    assert "tick 0" in browser.find_element(By.ID, "sse-log").text
