"""Raw sockets against an ASGI app: ``Raw`` (send, read a response, see the close)
and request builders."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

TIMEOUT = 5.0


@dataclass
class Resp:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw_body: bytes  # as framed on the wire (chunk sizes included)

    def get_all(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]

    def get(self, name: bytes) -> bytes | None:
        values = self.get_all(name)
        assert len(values) <= 1, f"{name!r} sent {len(values)} times"
        return values[0] if values else None


class Raw:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; unparsed: {self.buf!r}")
        self.buf += chunk

    def until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            self._more()
        data, _, self.buf = self.buf.partition(sep)
        return data + sep

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def head(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        lines = self.until(b"\r\n\r\n")[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.lower(), value.strip()))
        return status, headers

    def response(self, method: str = "GET") -> Resp:
        status, headers = self.head()
        names = [n for n, _ in headers]
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return Resp(status, headers, b"", b"")
        if b"transfer-encoding" in names:
            body, raw = b"", b""
            while True:
                size_line = self.until(b"\r\n")
                size = int(size_line.strip(), 16)
                data = self.exact(size + 2)
                raw += size_line + data
                body += data[:-2]
                if size == 0:
                    return Resp(status, headers, body, raw)
        if b"content-length" in names:
            length = int(dict(headers)[b"content-length"])
            body = self.exact(length)
            return Resp(status, headers, body, body)
        return Resp(status, headers, self.rest(), b"")

    def rest(self) -> bytes:
        """Everything up to EOF (raises socket.timeout if the server keeps it open)."""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                data, self.buf = self.buf, b""
                return data
            self.buf += chunk


def request(path: str = "/", method: str = "GET", body: bytes = b"", close: bool = False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def respond(send: Any, body: bytes = b"ok", status: int = 200, headers: Any = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


def close_socket(c: Raw, how: str) -> None:
    if how == "rst":  # abortive close: the peer sees a reset at once
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.sock.close()
