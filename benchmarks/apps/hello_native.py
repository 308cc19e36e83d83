"""Native blazeasgi: the seed's hello world with five security headers, plus the other
scenarios' routes (see common.py)."""

import asyncio

from blazeasgi import App, Request, Response, StreamingResponse

from .common import CHUNK, CHUNKS, HELLO, MESSAGE, PLAINTEXT, SECURITY_HEADERS, dumps

app = App()


@app.get("/")
def hello(request: Request) -> Response:
    return Response(HELLO, headers=SECURITY_HEADERS, media_type="text/plain")


@app.get("/suspend")
async def suspend(request: Request) -> Response:
    """Hello world after one suspension (as a handler awaiting I/O): the hand-off
    between the engine and a task (benchmarks.callgrind --suspend)."""
    await asyncio.sleep(0)
    return Response(HELLO, headers=SECURITY_HEADERS, media_type="text/plain")


@app.get("/plaintext")
def plaintext(request: Request) -> Response:
    return Response(PLAINTEXT, media_type="text/plain")


@app.get("/json")
def json_(request: Request) -> Response:
    return Response(dumps(MESSAGE), media_type="application/json")


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


def _chunks():
    for _ in range(CHUNKS):
        yield CHUNK


@app.get("/download")
def download(request: Request) -> StreamingResponse:
    return StreamingResponse(_chunks(), media_type="application/octet-stream")
