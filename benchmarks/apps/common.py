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
