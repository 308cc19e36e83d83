"""Raw HTTP/1.1 for the engine tests: a response parser, a raw-socket client that
keeps unread bytes between responses, request builders and MockConnection pumps."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..conftest import MockConnection


@dataclass
class Resp:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw: bytes = b""
    chunked: bool = False

    def get(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]

    @property
    def closes(self) -> bool:
        value = self.get(b"connection")
        return value is not None and b"close" in value.lower()


def parse_response(data: bytes, method: str = "GET", eof: bool = False) -> tuple[Resp, int] | None:
    """One response from the start of ``data`` -> (response, bytes used), or None if
    it is incomplete. ``eof`` says the peer closed (ends a close-delimited body)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    assert version == b"HTTP/1.1", f"bad status line {lines[0]!r}"
    code, _, reason = rest.partition(b" ")
    status = int(code)
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        assert sep and name == name.strip(), f"bad header line {line!r}"
        headers.append((name.lower(), value.strip()))
    resp = Resp(status, reason, headers, b"")
    pos = end + 4
    te = resp.get(b"transfer-encoding")
    cl = resp.all(b"content-length")
    assert len(cl) <= 1, "several content-length headers"
    if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
        pass
    elif te is not None:
        assert te.lower() == b"chunked" and not cl, f"bad framing {headers!r}"
        resp.chunked = True
        parts = []
        while True:
            nl = data.find(b"\r\n", pos)
            if nl < 0:
                return None
            size = int(data[pos:nl].split(b";")[0], 16)
            pos = nl + 2
            if size == 0:
                if data[pos : pos + 2] != b"\r\n":
                    return None  # (no trailers are ever sent by the engine)
                pos += 2
                break
            if len(data) < pos + size + 2:
                return None
            parts.append(data[pos : pos + size])
            assert data[pos + size : pos + size + 2] == b"\r\n", "chunk not followed by CRLF"
            pos += size + 2
        resp.body = b"".join(parts)
    elif cl:
        n = int(cl[0])
        if len(data) < pos + n:
            return None
        resp.body = data[pos : pos + n]
        pos += n
    else:
        if not eof:
            return None
        resp.body = data[pos:]
        pos = len(data)
    resp.raw = data[:pos]
    return resp, pos


def parse_all(data: bytes, methods: list[str] | None = None, eof: bool = True) -> tuple[list[Resp], bytes]:
    """Every complete response in ``data`` (1xx included) and the unparsed rest."""
    methods = list(methods or [])
    out = []
    while data:
        status_peek = data[9:12]
        method = "GET"
        if not status_peek.startswith(b"1") and methods:
            method = methods[0]
        got = parse_response(data, method, eof)
        if got is None:
            break
        resp, used = got
        if resp.status >= 200 and methods:
            methods.pop(0)
        out.append(resp)
        data = data[used:]
    return out, data


class Client:
    """A raw-socket HTTP client that keeps unread bytes between responses."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def response(self, method: str = "GET", informational: bool = False) -> Resp:
        while True:
            got = parse_response(self.buf, method, self.eof)
            if got is not None:
                resp, used = got
                self.buf = self.buf[used:]
                if resp.status >= 200 or informational:
                    return resp
                continue
            if self.eof:
                raise AssertionError(f"connection closed mid-response: {self.buf!r}")
            self._fill()

    def is_closed(self, timeout: float = 3.0) -> bool:
        """True once the server closes (EOF or reset); fails on unexpected bytes."""
        self.sock.settimeout(timeout)
        try:
            while not self.eof:
                self._fill()
                assert not self.buf, f"unexpected bytes: {self.buf[:200]!r}"
        except TimeoutError:
            return False
        return True

    def read_until_close(self, timeout: float = 3.0) -> bytes:
        self.sock.settimeout(timeout)
        while not self.eof:
            self._fill()
        data, self.buf = self.buf, b""
        return data


async def pump(conn: MockConnection, until: Callable[[bytes], bool], timeout: float = 3.0) -> bytes:
    """Run the loop until what the connection wrote satisfies ``until``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out = b""
    while True:
        out += conn.transport.take()
        if until(out):
            return out
        if loop.time() > deadline:
            raise AssertionError(f"timed out; written so far: {out!r}")
        await asyncio.sleep(0.002)


def n_responses(n: int, methods: list[str] | None = None) -> Callable[[bytes], bool]:
    def check(data: bytes) -> bool:
        resps, _ = parse_all(data, methods, eof=False)
        return len([r for r in resps if r.status >= 200]) >= n

    return check


async def closed_soon(conn: MockConnection, timeout: float = 1.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not conn.transport.closed and loop.time() < deadline:
        await asyncio.sleep(0.002)
    await asyncio.sleep(0)
    return conn.transport.closed


def get(path: str = "/", extra: bytes = b"", version: bytes = b"1.1", method: bytes = b"GET") -> bytes:
    host = b"Host: x\r\n" if version == b"1.1" else b""
    return b"%s %s HTTP/%s\r\n%s%s\r\n" % (method, path.encode(), version, host, extra)


NO_DEFAULTS = {"date_header": False, "server_header": False}


#: The answer of the engine tests' ``GET /`` route (``hi``, text/plain).
HI = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain; charset=utf-8\r\n\r\nhi"


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
