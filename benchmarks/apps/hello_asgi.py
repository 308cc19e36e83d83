"""Raw ASGI app (no framework): the seed's hello world with five security headers,
plus the other scenarios' routes (see common.py). The same code for every ASGI server."""

import asyncio

from .common import CHUNK, CHUNKS, HELLO, MESSAGE, PLAINTEXT, dumps

HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"13"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"content-security-policy", b"default-src 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
BODY = {"type": "http.response.body", "body": HELLO}

PLAIN_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"13")],
}
PLAIN_BODY = {"type": "http.response.body", "body": PLAINTEXT}
NOT_FOUND_START = {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"9")]}
NOT_FOUND_BODY = {"type": "http.response.body", "body": b"Not Found"}


async def _json(send):
    body = dumps(MESSAGE)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _echo(receive, send):
    parts = []
    more = True
    while more:
        message = await receive()
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(parts)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _download(send):
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    for _ in range(CHUNKS):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        await send(START)
        await send(BODY)
    elif path == "/suspend":  # after one suspension, as a handler awaiting I/O
        await asyncio.sleep(0)
        await send(START)
        await send(BODY)
    elif path == "/plaintext":
        await send(PLAIN_START)
        await send(PLAIN_BODY)
    elif path == "/json":
        await _json(send)
    elif path == "/echo" and scope["method"] == "POST":
        await _echo(receive, send)
    elif path == "/download":
        await _download(send)
    else:
        await send(NOT_FOUND_START)
        await send(NOT_FOUND_BODY)
