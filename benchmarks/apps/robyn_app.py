"""Robyn app with the scenarios' routes (see common.py).

Robyn runs its own server: ``python -m benchmarks.apps.robyn_app --processes 1 --workers 1
--log-level WARN --disable-openapi`` with ``ROBYN_HOST``/``ROBYN_PORT`` in the environment.
"""

from robyn import Headers, Request, Response, Robyn, StreamingResponse

from .common import CHUNK, CHUNKS, HELLO, MESSAGE, PLAINTEXT, SECURITY_HEADERS, dumps

app = Robyn(__file__)

HELLO_HEADERS = {"content-type": "text/plain; charset=utf-8", **SECURITY_HEADERS}


@app.get("/")
def hello(request: Request) -> Response:
    return Response(200, Headers(HELLO_HEADERS), HELLO)


@app.get("/plaintext")
def plaintext(request: Request) -> Response:
    return Response(200, Headers({"content-type": "text/plain; charset=utf-8"}), PLAINTEXT)


@app.get("/json")
def json_(request: Request) -> Response:
    return Response(200, Headers({"content-type": "application/json"}), dumps(MESSAGE))


@app.post("/echo")
def echo(request: Request) -> Response:
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    return Response(200, Headers({"content-type": "application/octet-stream"}), bytes(body))


def _chunks():
    for _ in range(CHUNKS):
        yield CHUNK


@app.get("/download")
def download(request: Request) -> StreamingResponse:
    return StreamingResponse(_chunks(), media_type="application/octet-stream")


if __name__ == "__main__":
    app.start(_check_port=False)
