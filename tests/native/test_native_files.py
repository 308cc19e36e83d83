"""FileResponse: whole files, ranges, conditional requests, HEAD."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from blazeasgi import App, FileResponse, Request

CONTENT = b"0123456789abcdefghijklmnopqrstuvwxyz"  # 36 bytes
BIG_SIZE = 5 * 1024 * 1024 + 3


def build_app(root: Path) -> App:
    app = App()

    @app.get("/static/{name}")
    def static(request: Request) -> FileResponse:
        return FileResponse(root / request.path_params["name"])

    @app.get("/async/{name}")
    async def async_static(request: Request) -> FileResponse:
        return FileResponse(root / request.path_params["name"])

    @app.get("/download")
    def download(request: Request) -> FileResponse:
        return FileResponse(root / "data.txt", filename="report.csv")

    @app.get("/download-unicode")
    def download_unicode(request: Request) -> FileResponse:
        return FileResponse(root / "data.txt", filename="résumé 2024.pdf")

    @app.get("/typed")
    def typed(request: Request) -> FileResponse:
        return FileResponse(root / "data.txt", media_type="application/x-custom", headers={"x-f": "1"})

    @app.get("/dir")
    def directory(request: Request) -> FileResponse:
        return FileResponse(root)

    return app


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data.txt").write_bytes(CONTENT)
    (tmp_path / "page.html").write_bytes(b"<p>hi</p>")
    (tmp_path / "blob.json").write_bytes(b'{"a": 1}')
    (tmp_path / "noext").write_bytes(b"\x00\x01")
    (tmp_path / "empty.txt").write_bytes(b"")
    big = bytearray()
    seed = hashlib.sha256(b"big").digest()
    while len(big) < BIG_SIZE:
        seed = hashlib.sha256(seed).digest()
        big += seed * 64
    (tmp_path / "big.bin").write_bytes(bytes(big[:BIG_SIZE]))
    return tmp_path


@pytest.fixture
def srv(serve: Any, root: Path) -> Any:
    return serve(build_app(root))


@pytest.fixture
def client(srv: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url(""), timeout=30) as c:
        yield c


def read_to_eof(sock: Any) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize("prefix", ["/static", "/async"])
def test_whole_file(client: httpx.Client, root: Path, prefix: str) -> None:
    r = client.get(f"{prefix}/data.txt")
    assert r.status_code == 200
    assert r.content == CONTENT
    assert r.headers["content-length"] == str(len(CONTENT))
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"')
    mtime = os.stat(root / "data.txt").st_mtime
    assert parsedate_to_datetime(r.headers["last-modified"]).timestamp() == int(mtime)
    assert "content-disposition" not in r.headers


@pytest.mark.parametrize(
    "name,ctype",
    [
        ("page.html", "text/html; charset=utf-8"),
        ("blob.json", "application/json"),
        ("noext", "application/octet-stream"),
    ],
)
def test_content_type_guessed(client: httpx.Client, name: str, ctype: str) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == ctype


def test_explicit_media_type_and_headers(client: httpx.Client) -> None:
    r = client.get("/typed")
    assert r.headers["content-type"] == "application/x-custom"
    assert r.headers["x-f"] == "1"
    assert r.content == CONTENT


def test_empty_file(client: httpx.Client) -> None:
    r = client.get("/static/empty.txt")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"
    # connection still usable
    assert client.get("/static/data.txt").content == CONTENT


def test_etag_stable_and_changes_with_file(client: httpx.Client, root: Path) -> None:
    etag = client.get("/static/data.txt").headers["etag"]
    assert client.get("/static/data.txt").headers["etag"] == etag
    (root / "data.txt").write_bytes(CONTENT + b"!")
    r = client.get("/static/data.txt")
    assert r.content == CONTENT + b"!"
    assert r.headers["etag"] != etag


# -- ranges -------------------------------------------------------------------------------


def test_range_first_bytes(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.content == CONTENT[:10]
    assert r.headers["content-range"] == f"bytes 0-9/{len(CONTENT)}"
    assert r.headers["content-length"] == "10"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_range_middle(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"Range": "bytes=10-14"})
    assert r.status_code == 206
    assert r.content == CONTENT[10:15]
    assert r.headers["content-range"] == f"bytes 10-14/{len(CONTENT)}"


def test_suffix_range(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"Range": "bytes=-5"})
    assert r.status_code == 206
    assert r.content == CONTENT[-5:]
    size = len(CONTENT)
    assert r.headers["content-range"] == f"bytes {size - 5}-{size - 1}/{size}"


def test_open_range(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"Range": "bytes=10-"})
    assert r.status_code == 206
    assert r.content == CONTENT[10:]
    assert r.headers["content-range"] == f"bytes 10-{len(CONTENT) - 1}/{len(CONTENT)}"
    assert r.headers["content-length"] == str(len(CONTENT) - 10)


def test_range_end_past_size_is_clamped(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"Range": "bytes=30-1000"})
    assert r.status_code == 206
    assert r.content == CONTENT[30:]
    assert r.headers["content-range"] == f"bytes 30-{len(CONTENT) - 1}/{len(CONTENT)}"


def test_unsatisfiable_range_416(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"Range": "bytes=99999-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(CONTENT)}"
    assert CONTENT not in r.content
    # connection stays usable
    assert client.get("/static/data.txt").content == CONTENT


def test_multiple_ranges_give_whole_file(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"Range": "bytes=0-1,5-6"})
    assert r.status_code == 200
    assert r.content == CONTENT
    assert "content-range" not in r.headers


def test_unknown_range_unit_ignored(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"Range": "items=0-1"})
    assert r.status_code == 200
    assert r.content == CONTENT


def test_if_range_matching_etag_honours_range(client: httpx.Client) -> None:
    etag = client.get("/static/data.txt").headers["etag"]
    r = client.get("/static/data.txt", headers={"Range": "bytes=0-3", "If-Range": etag})
    assert r.status_code == 206
    assert r.content == CONTENT[:4]
    r = client.get("/static/data.txt", headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert r.status_code == 200
    assert r.content == CONTENT


def test_range_on_big_file(client: httpx.Client, root: Path) -> None:
    big = (root / "big.bin").read_bytes()
    r = client.get("/static/big.bin", headers={"Range": "bytes=1000000-3000000"})
    assert r.status_code == 206
    assert r.content == big[1_000_000:3_000_001]


# -- conditional requests -------------------------------------------------------------


def test_if_none_match_304(srv: Any, client: httpx.Client) -> None:
    etag = client.get("/static/data.txt").headers["etag"]
    r = client.get("/static/data.txt", headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    # raw check: no body bytes and the connection stays in sync
    with srv.connect() as sock:
        sock.sendall(
            f"GET /static/data.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n".encode()
            + b"GET /static/page.html HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        data = b""
        while not data.endswith(b"<p>hi</p>"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 304 ")
    assert rest.startswith(b"HTTP/1.1 200 ")


def test_if_none_match_list_and_weak(client: httpx.Client) -> None:
    etag = client.get("/static/data.txt").headers["etag"]
    r = client.get("/static/data.txt", headers={"If-None-Match": f'"other", W/{etag}'})
    assert r.status_code == 304
    r = client.get("/static/data.txt", headers={"If-None-Match": "*"})
    assert r.status_code == 304


def test_if_none_match_mismatch_200(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"If-None-Match": '"nope"'})
    assert r.status_code == 200
    assert r.content == CONTENT


def test_if_modified_since_future_304(client: httpx.Client) -> None:
    future = formatdate(4_000_000_000, usegmt=True)
    r = client.get("/static/data.txt", headers={"If-Modified-Since": future})
    assert r.status_code == 304
    assert r.content == b""


def test_if_modified_since_past_200(client: httpx.Client) -> None:
    past = formatdate(1_000_000_000, usegmt=True)
    r = client.get("/static/data.txt", headers={"If-Modified-Since": past})
    assert r.status_code == 200
    assert r.content == CONTENT


def test_if_modified_since_equal_last_modified_304(client: httpx.Client) -> None:
    last_modified = client.get("/static/data.txt").headers["last-modified"]
    r = client.get("/static/data.txt", headers={"If-Modified-Since": last_modified})
    assert r.status_code == 304


def test_if_modified_since_garbage_ignored(client: httpx.Client) -> None:
    r = client.get("/static/data.txt", headers={"If-Modified-Since": "not a date"})
    assert r.status_code == 200
    assert r.content == CONTENT


# -- HEAD, errors -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/static", "/async"])
def test_head_headers_no_body(srv: Any, prefix: str) -> None:
    with srv.connect() as sock:
        sock.sendall(
            f"HEAD {prefix}/data.txt HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            + f"GET {prefix}/page.html HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        data = b""
        while not data.endswith(b"<p>hi</p>"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lower = head.lower()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"content-length: {len(CONTENT)}\r\n".encode() in lower
    assert b"\r\netag: " in lower
    assert b"\r\nlast-modified: " in lower
    assert b"\r\ncontent-type: text/plain; charset=utf-8" in lower
    assert rest.startswith(b"HTTP/1.1 200 ")  # no body bytes in between


def test_head_via_httpx(client: httpx.Client) -> None:
    r = client.head("/static/big.bin")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(BIG_SIZE)


def test_missing_file_404(client: httpx.Client) -> None:
    r = client.get("/static/nope.txt")
    assert r.status_code == 404
    assert client.get("/static/data.txt").content == CONTENT


def test_directory_404(client: httpx.Client) -> None:
    assert client.get("/dir").status_code == 404


# -- big files, downloads ---------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/static", "/async"])
def test_big_file_intact(client: httpx.Client, root: Path, prefix: str) -> None:
    expected = hashlib.sha256((root / "big.bin").read_bytes()).hexdigest()
    digest = hashlib.sha256()
    total = 0
    with client.stream("GET", f"{prefix}/big.bin") as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(BIG_SIZE)
        for piece in r.iter_raw():
            digest.update(piece)
            total += len(piece)
    assert total == BIG_SIZE
    assert digest.hexdigest() == expected
    # keep-alive after a sendfile: the next response is in sync
    assert client.get("/static/data.txt").content == CONTENT


def test_big_file_slow_reader(srv: Any, root: Path) -> None:
    # A client that reads in small pieces: the server has to wait for it.
    expected = (root / "big.bin").read_bytes()
    with srv.connect(timeout=20) as sock:
        sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = bytearray()
        while chunk := sock.recv(4096):
            data += chunk
    body = bytes(data).partition(b"\r\n\r\n")[2]
    assert len(body) == len(expected)
    assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()


def test_filename_gives_content_disposition(client: httpx.Client) -> None:
    r = client.get("/download")
    assert r.status_code == 200
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert "report.csv" in disposition
    # the media type follows the download name
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content == CONTENT


def test_unicode_filename_is_encoded(client: httpx.Client) -> None:
    r = client.get("/download-unicode")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert "filename*=utf-8''r%C3%A9sum%C3%A9%202024.pdf" in disposition
    assert r.headers["content-type"] == "application/pdf"


def test_head_of_missing_file_404(srv: Any) -> None:
    with srv.connect() as sock:
        sock.sendall(b"HEAD /static/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_to_eof(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ")
    assert body == b""
