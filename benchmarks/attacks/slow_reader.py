"""Slow readers: clients that request an endless streamed response and stop reading.

    python -m benchmarks.attacks.slow_reader [--clients 50] [--servers blazeasgi uvicorn]

For each server (and for blazeasgi both the ASGI app and the native StreamingResponse):
``--clients`` connections (receive buffer 16 KiB) each ask for ``/endless`` (64 KiB
chunks forever), read the response head and nothing else. Once the server stops
producing, reported: server RSS growth (MiB, and KiB per slow reader) and how much
the app produced in all (MiB; what is not in the server's buffers is in the kernel's
socket buffers). Unbounded buffering would show as RSS growing with the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

from .common import APP, NATIVE, SERVERS, get, header, raise_fd_limit, rss_kib, running


async def count(port: int) -> int:
    _, body = await get(port, "/count")
    return int(body)


async def attack(pid: int, port: int, clients: int, settle: float) -> dict[str, float]:
    await get(port, "/")
    base_rss = rss_kib(pid)
    socks = []
    for _ in range(clients):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(200)  # the head (and a bit of body); nothing more is ever read
        socks.append(s)
    # wait until production stalls (the same count twice, `settle` seconds apart)
    last = -1
    deadline = time.monotonic() + 60
    produced = await count(port)
    while produced != last and time.monotonic() < deadline:
        last = produced
        await asyncio.sleep(settle)
        produced = await count(port)
    peak_rss = rss_kib(pid)
    for s in socks:
        s.close()
    return {
        "rss_growth_mib": (peak_rss - base_rss) / 1024,
        "per_client_kib": (peak_rss - base_rss) / clients,
        "produced_mib": produced * 65536 / (1 << 20),
        "stalled": float(produced == last),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds without progress = stalled")
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    args = parser.parse_args()
    raise_fd_limit(4 * args.clients + 100)
    header(f"slow readers: {args.clients} clients stop reading an endless 64 KiB-chunk stream")
    runs = [(server, APP, "asgi") for server in args.servers]
    if "blazeasgi" in args.servers:
        runs.insert(1, ("blazeasgi", NATIVE, "native"))
    for server, app, kind in runs:
        with running(server, app) as (proc, port):
            r = asyncio.run(attack(proc.pid, port, args.clients, args.settle))
        state = "stalled" if r["stalled"] else "STILL PRODUCING after 60 s"
        rss = f"RSS +{r['rss_growth_mib']:6.1f} MiB ({r['per_client_kib']:6.0f} KiB/reader)"
        print(f"{server:10} {kind:6} {rss}, produced {r['produced_mib']:7.1f} MiB in all, {state}")


if __name__ == "__main__":
    main()
