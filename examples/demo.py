"""The demo app: native hot routes in front of a FastAPI app (mixed mode)."""
from fastapi import FastAPI

from blazeasgi import App, JSONResponse, Request, Response

api = FastAPI()


@api.get("/api/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, object]:
    return {"item_id": item_id, "q": q}


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
