"""FastAPI app with the scenarios' routes (see common.py), written the framework's way,
plus ``/items/{item_id}``: a path parameter and a pydantic response model."""

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel

from .common import CHUNK, CHUNKS, HELLO, MESSAGE, PLAINTEXT, SECURITY_HEADERS, item

app = FastAPI()


class Item(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]


@app.get("/")
async def hello() -> PlainTextResponse:
    return PlainTextResponse(HELLO, headers=SECURITY_HEADERS)


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse(PLAINTEXT)


@app.get("/json")
async def json_() -> dict[str, str]:
    return MESSAGE


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def _chunks():
    for _ in range(CHUNKS):
        yield CHUNK


@app.get("/download")
async def download() -> StreamingResponse:
    return StreamingResponse(_chunks(), media_type="application/octet-stream")


@app.get("/items/{item_id}", response_model=Item)
async def read_item(item_id: int) -> Item:
    return Item(**item(item_id))
