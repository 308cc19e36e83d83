"""Real-time demo: one page with a server-sent events feed and a WebSocket chat.

    blazeasgi examples.realtime:app --port 8000     # then open http://127.0.0.1:8000/realtime

Routes (``register`` adds them to any App; examples/demo.py uses it too):

* ``GET /realtime``: the page (plain HTML + JavaScript, no build step);
* ``GET /realtime/events?interval=1&count=0``: SSE ticks (count 0: forever);
* ``/realtime/ws``: a native WebSocket chat room: every message is echoed back to
  its sender as ``echo: ...`` and broadcast to the others as ``<name>: ...``.

With ``asgi_ws`` set (the demo's FastAPI echo at ``/api/ws``), the page also checks a
WebSocket served by the ASGI app, so both interfaces are exercised side by side.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator

from blazeasgi import App, EventSourceResponse, HTMLResponse, Request
from blazeasgi.websocket import WebSocket

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>blazeasgi real-time demo</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; }
  section { border: 1px solid #ccc; border-radius: 6px; padding: .5rem 1rem; margin-bottom: 1rem; }
  ul { list-style: none; padding: 0; max-height: 14rem; overflow-y: auto; font-family: monospace; }
  .status { font-weight: bold; }
</style>
</head>
<body data-asgi-ws="__ASGI_WS__">
<h1>blazeasgi real-time demo</h1>
<section>
  <h2>Server-sent events <span id="sse-status" class="status">connecting</span></h2>
  <ul id="sse-log"></ul>
</section>
<section>
  <h2>WebSocket chat <span id="ws-status" class="status">connecting</span></h2>
  <form id="chat-form">
    <input id="chat-input" autocomplete="off" placeholder="say something" required>
    <button type="submit">Send</button>
  </form>
  <ul id="ws-log"></ul>
</section>
<section id="asgi-section" hidden>
  <h2>WebSocket on the ASGI app <span id="asgi-status" class="status">connecting</span></h2>
  <ul id="asgi-log"></ul>
</section>
<script>
"use strict";
// What the page received, for people (the lists) and for the browser test (this object).
const realtime = window.realtime = { sse: [], ws: [], asgi: [] };
const params = new URLSearchParams(location.search);
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;

function log(listId, text) {
  const item = document.createElement("li");
  item.textContent = text;
  document.getElementById(listId).prepend(item);
}
function status(id, text) { document.getElementById(id).textContent = text; }

// Server-sent events
const events = new EventSource("/realtime/events?interval=" + (params.get("interval") || "1"));
events.onopen = () => status("sse-status", "open");
events.onerror = () => status("sse-status", "reconnecting");
events.onmessage = (event) => {
  const data = JSON.parse(event.data);
  realtime.sse.push(data);
  log("sse-log", "tick " + data.tick + " at " + data.time);
};

// WebSocket chat (native handler)
const chat = new WebSocket(wsBase + "/realtime/ws");
chat.onopen = () => { status("ws-status", "open"); chat.send("hello from the browser"); };
chat.onclose = (event) => status("ws-status", "closed (" + event.code + ")");
chat.onmessage = (event) => { realtime.ws.push(event.data); log("ws-log", event.data); };
document.getElementById("chat-form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("chat-input");
  if (chat.readyState === WebSocket.OPEN) chat.send(input.value);
  input.value = "";
};

// WebSocket echo served by the ASGI (FastAPI) app, when the demo has one
const asgiPath = document.body.dataset.asgiWs;
if (asgiPath) {
  document.getElementById("asgi-section").hidden = false;
  const echo = new WebSocket(wsBase + asgiPath);
  echo.onopen = () => { status("asgi-status", "open"); echo.send("hello, ASGI"); };
  echo.onclose = (event) => status("asgi-status", "closed (" + event.code + ")");
  echo.onmessage = (event) => { realtime.asgi.push(event.data); log("asgi-log", event.data); };
}
</script>
</body>
</html>
"""


class ChatRoom:
    """Everyone connected to /realtime/ws."""

    def __init__(self) -> None:
        self.members: dict[WebSocket, str] = {}
        self._names = itertools.count(1)

    async def handle(self, ws: WebSocket) -> None:
        await ws.accept()
        name = f"guest-{next(self._names)}"
        self.members[ws] = name
        try:
            await ws.send_text(f"welcome, you are {name}")
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                await ws.send_text(f"echo: {text}")
                await self.broadcast(f"{name}: {text}", skip=ws)
        finally:
            del self.members[ws]

    async def broadcast(self, text: str, skip: WebSocket | None = None) -> None:
        others = [member for member in self.members if member is not skip]
        # One slow member must not hold up the others: send concurrently.
        await asyncio.gather(*(member.send_text(text) for member in others), return_exceptions=True)


def register(app: App, asgi_ws: str = "") -> None:
    """Add the real-time routes to ``app``; ``asgi_ws``: path of an ASGI echo to show."""
    page = PAGE.replace("__ASGI_WS__", asgi_ws)
    room = ChatRoom()

    @app.get("/realtime")
    def realtime_page(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/realtime/events")
    def realtime_events(request: Request) -> EventSourceResponse:
        interval = min(max(float(request.query_params.get("interval", "1")), 0.05), 60.0)
        count = int(request.query_params.get("count", "0"))

        async def ticks() -> AsyncIterator[str]:
            for tick in itertools.count():
                if count and tick >= count:
                    return
                yield json.dumps({"tick": tick, "time": time.strftime("%H:%M:%S")})
                await asyncio.sleep(interval)

        return EventSourceResponse(ticks())

    app.websocket("/realtime/ws")(room.handle)


app = App()
register(app)
