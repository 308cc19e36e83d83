"""Granian RSGI app: the seed's hello world with five security headers, plus the other
scenarios' routes (see common.py)."""

from .common import CHUNK, CHUNKS, HELLO, MESSAGE, PLAINTEXT, dumps

HEADERS = [
    ("content-type", "text/plain; charset=utf-8"),
    ("strict-transport-security", "max-age=63072000; includeSubDomains"),
    ("content-security-policy", "default-src 'self'"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
]
PLAIN_HEADERS = [("content-type", "text/plain; charset=utf-8")]
JSON_HEADERS = [("content-type", "application/json")]
OCTET_HEADERS = [("content-type", "application/octet-stream")]


async def app(scope, proto):
    path = scope.path
    if path == "/":
        proto.response_bytes(200, HEADERS, HELLO)
    elif path == "/plaintext":
        proto.response_bytes(200, PLAIN_HEADERS, PLAINTEXT)
    elif path == "/json":
        proto.response_bytes(200, JSON_HEADERS, dumps(MESSAGE))
    elif path == "/echo" and scope.method == "POST":
        proto.response_bytes(200, OCTET_HEADERS, await proto())
    elif path == "/download":
        transport = proto.response_stream(200, OCTET_HEADERS)
        for _ in range(CHUNKS):
            await transport.send_bytes(CHUNK)
    else:
        proto.response_bytes(404, [], b"Not Found")
