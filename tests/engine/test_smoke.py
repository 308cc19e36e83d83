from blazeasgi import App, Request, Response

from ..conftest import MockConnection

app = App()


@app.get("/")
def hello(request: Request) -> Response:
    return Response(b"hi", media_type="text/plain")


def test_real_socket_hello(serve) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"hi"):
            data += sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def test_mock_pipelined(run) -> None:
    async def go() -> bytes:
        conn = MockConnection(app, date_header=False)
        conn.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        return await conn.settle()

    out = run(go())
    assert out.count(b"HTTP/1.1 200 OK") == 2
