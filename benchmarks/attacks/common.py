"""Starting blazeasgi and uvicorn the same way, reading their memory, a tiny client.

Both servers: one process, uvloop, httptools, access log off, defaults otherwise
(blazeasgi's request-head timeout included: uvicorn has none), on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = "benchmarks.attacks.apps:app"
NATIVE = "benchmarks.attacks.apps:native"
SERVERS = ("blazeasgi", "uvicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(server: str, port: int, app: str = APP, **options: object) -> list[str]:
    """The command line; ``options`` are the CLI flags both servers share
    (timeout_keep_alive, timeout_graceful_shutdown, limit_concurrency)."""
    base = {
        "blazeasgi": [sys.executable, "-m", "blazeasgi", app, "--loop", "uvloop"],
        "uvicorn": [sys.executable, "-m", "uvicorn", app, "--loop", "uvloop", "--http", "httptools"],
    }[server]
    args = [*base, "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    for name, value in options.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    return args


@contextmanager
def running(server: str, app: str = APP, **options: object) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    proc = subprocess.Popen(command(server, port, app, **options), cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        wait_ready(port)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1))


def wrk(port: int, seconds: float, connections: int = 4, path: str = "/") -> float:
    """Requests per second from wrk (one thread), or -1 if wrk is missing."""
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except FileNotFoundError:
        return -1.0
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        print(f"    wrk: {errors.group(0)}")
    return float(match.group(1)) if match else 0.0


async def get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    """One request on its own connection -> (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def raise_fd_limit(n: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def header(title: str) -> None:
    print(f"\n== {title} ({os.uname().nodename}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
