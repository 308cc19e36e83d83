"""A keep-alive load client for tests/engine/test_engine_overload.py, run in its own process.

``python -m tests.apps.overload_client PORT CONNECTIONS SECONDS`` opens CONNECTIONS
sockets and on each sends GET / again as soon as the previous response has fully
arrived, for SECONDS; then it waits for the last responses and prints one JSON
line of counts. A connection the server ends (EOF or reset) while a request of
it is unanswered is *dropped*: what wrk reports as a read error.

Its own process, not a thread of the test: a client sharing the server's GIL
would pace the server instead of overloading it. ``max_gap`` is the longest time
the client itself did not look at its sockets (a starved client delays its own
next request, which a server may then rightly time out).
"""

from __future__ import annotations

import errno
import json
import selectors
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: overload\r\n\r\n"


class Conn:
    __slots__ = ("buf", "need", "outstanding", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.need = -1  # bytes of the response in flight, once its head is parsed
        self.outstanding = False


def _response_length(buf: bytes) -> int:
    """Full length of the response at the start of ``buf``, or -1 if its head is incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return -1
    length = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return end + 4 + length


def _send(sock: socket.socket) -> bool:
    """Send a request (a few dozen bytes: the socket buffer has room); False if the peer is gone."""
    try:
        sock.send(REQUEST)
    except (ConnectionResetError, BrokenPipeError):
        return False
    return True


def main(port: int, count: int, seconds: float) -> dict[str, float]:
    sel = selectors.DefaultSelector()
    conns: list[Conn] = []
    connect_errors = 0
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        if sock.connect_ex(("127.0.0.1", port)) not in (0, errno.EINPROGRESS):
            connect_errors += 1
            sock.close()
            continue
        conn = Conn(sock)
        conns.append(conn)
        sel.register(sock, selectors.EVENT_WRITE, conn)
    responses = dropped = 0
    start = last = time.monotonic()
    stop_at = start + seconds
    max_gap = 0.0
    open_count = len(conns)
    while open_count and time.monotonic() < stop_at + 15:
        events = sel.select(0.5)
        now = time.monotonic()
        max_gap = max(max_gap, now - last)
        last = now
        sending = now < stop_at
        for key, mask in events:
            conn = key.data
            sock = conn.sock
            if mask & selectors.EVENT_WRITE:  # connected (or failed to)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    connect_errors += 1
                    sel.unregister(sock)
                    sock.close()
                    open_count -= 1
                    continue
                conn.outstanding = True
                if _send(sock):
                    sel.modify(sock, selectors.EVENT_READ, conn)
                else:
                    dropped += 1
                    sel.unregister(sock)
                    sock.close()
                    open_count -= 1
                continue
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                if conn.outstanding:
                    dropped += 1
                sel.unregister(sock)
                sock.close()
                open_count -= 1
                continue
            conn.buf += data
            while True:
                if conn.need < 0:
                    conn.need = _response_length(conn.buf)
                    if conn.need < 0:
                        break
                if len(conn.buf) < conn.need:
                    break
                conn.buf = conn.buf[conn.need :]
                conn.need = -1
                conn.outstanding = False
                responses += 1
            if not conn.outstanding:
                if sending:
                    conn.outstanding = True
                    if not _send(sock):  # the server closed after answering
                        dropped += 1
                        sel.unregister(sock)
                        sock.close()
                        open_count -= 1
                else:
                    sel.unregister(sock)
                    sock.close()
                    open_count -= 1
    unanswered = sum(1 for c in conns if c.outstanding and c.sock.fileno() != -1)
    return {
        "connections": len(conns),
        "responses": responses,
        "dropped": dropped,
        "unanswered": unanswered,
        "connect_errors": connect_errors,
        "max_gap": round(max_gap, 3),
    }


if __name__ == "__main__":
    port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(main(port, count, seconds)), flush=True)
