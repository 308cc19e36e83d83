"""Starlette app with the scenarios' routes (see common.py), written the framework's way."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .common import CHUNK, CHUNKS, HELLO, MESSAGE, PLAINTEXT, SECURITY_HEADERS


async def hello(request: Request) -> Response:
    return PlainTextResponse(HELLO, headers=SECURITY_HEADERS)


async def plaintext(request: Request) -> Response:
    return PlainTextResponse(PLAINTEXT)


async def json_(request: Request) -> Response:
    return JSONResponse(MESSAGE)


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def _chunks():
    for _ in range(CHUNKS):
        yield CHUNK


async def download(request: Request) -> Response:
    return StreamingResponse(_chunks(), media_type="application/octet-stream")


app = Starlette(
    routes=[
        Route("/", hello),
        Route("/plaintext", plaintext),
        Route("/json", json_),
        Route("/echo", echo, methods=["POST"]),
        Route("/download", download),
    ]
)
