"""Granian RSGI hello world with five security headers."""

HEADERS = [
    ("content-type", "text/plain; charset=utf-8"),
    ("strict-transport-security", "max-age=63072000; includeSubDomains"),
    ("content-security-policy", "default-src 'self'"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
]


async def app(scope, proto):
    proto.response_bytes(200, HEADERS, b"Hello, world!")
