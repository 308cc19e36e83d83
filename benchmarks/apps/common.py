"""What every benchmark app serves, byte for byte, whatever its interface.

| path | scenario | response |
|---|---|---|
| ``GET /`` | hello | ``Hello, world!`` text/plain + five security headers (the seed's app) |
| ``GET /plaintext`` | plaintext (pipelined) | ``Hello, World!`` text/plain |
| ``GET /json`` | json | ``{"message":"Hello, World!"}`` serialised per request |
| ``POST /echo`` | echo | the request body back, application/octet-stream |
| ``GET /download`` | download | 1 MiB streamed in 16 chunks of 64 KiB |
| ``GET /items/{id}`` | fastapi-items | FastAPI only: path parameter + pydantic response model |
"""

HELLO = b"Hello, world!"
PLAINTEXT = b"Hello, World!"
MESSAGE = {"message": "Hello, World!"}

SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "content-security-policy": "default-src 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

CHUNK = b"x" * 65536
CHUNKS = 16
DOWNLOAD_SIZE = len(CHUNK) * CHUNKS  # 1 MiB

#: What a browser sends for a page beyond Host: Chrome's header fields on a reload, with
#: client hints, fetch metadata, accept lists and cookies (the ``hello-browser`` scenario,
#: and ``--browser`` of benchmarks.micro and benchmarks.callgrind).
BROWSER_HEADERS: tuple[tuple[str, str], ...] = (
    ("Connection", "keep-alive"),
    ("Cache-Control", "max-age=0"),
    ("sec-ch-ua", '"Chromium";v="131", "Not_A Brand";v="24"'),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", '"Linux"'),
    ("Upgrade-Insecure-Requests", "1"),
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Safari/537.36",
    ),
    (
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
        "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    ),
    ("Sec-Fetch-Site", "none"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-User", "?1"),
    ("Sec-Fetch-Dest", "document"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "en-US,en;q=0.9,de;q=0.8"),
    (
        "Cookie",
        "sessionid=8f3kq2n1v0x7c4m9z6b5l2j8h1g3d0s; csrftoken=Zq8xW3vN7rT2yK5mP9cL4bH6jF1dS0aG;"
        " _ga=GA1.1.1234567890.1733220000; _gid=GA1.1.987654321.1733220000;"
        " consent=analytics:1,ads:0; cart=3f1e9a7c-52d4-4b8e-a0c6-9d2f71e84b35; lang=en; theme=dark",
    ),
)

TEXT_PLAIN = "text/plain; charset=utf-8"
OCTET_STREAM = "application/octet-stream"

try:
    import orjson

    def dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover
    import json

    def dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


def item(item_id: int) -> dict[str, object]:
    """The FastAPI scenario's item (validated by a pydantic model on the way out)."""
    return {"id": item_id, "name": f"item {item_id}", "price": 12.5, "tags": ["bench", "fastapi"]}
