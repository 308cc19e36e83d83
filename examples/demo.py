"""The demo app: native hot routes in front of a FastAPI app (mixed mode).

Open http://127.0.0.1:8000/realtime for the real-time page: an SSE feed and a
WebSocket chat served natively, plus a WebSocket echo served by FastAPI.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from blazeasgi import App, JSONResponse, Request, Response
from examples.realtime import register as register_realtime

api = FastAPI()


@api.get("/api/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, object]:
    return {"item_id": item_id, "q": q}


@api.websocket("/api/ws")
async def api_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text("asgi echo: " + await websocket.receive_text())
    except WebSocketDisconnect:
        pass


app = App(fallback=api)


@app.get("/")
def hello(request: Request) -> Response:
    return Response(b"Hello, world!", media_type="text/plain")


@app.get("/json")
def json_route(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, world!"})


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


register_realtime(app, asgi_ws="/api/ws")
