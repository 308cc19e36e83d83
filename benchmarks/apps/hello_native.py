"""Native blazeasgi: the seed's hello world with five security headers."""
from blazeasgi import App, Request, Response

SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "content-security-policy": "default-src 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

app = App()


@app.get("/")
def hello(request: Request) -> Response:
    return Response(b"Hello, world!", headers=SECURITY_HEADERS, media_type="text/plain")
