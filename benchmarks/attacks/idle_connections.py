"""Memory per idle keep-alive connection.

    python -m benchmarks.attacks.idle_connections [--connections 10000] [--servers blazeasgi uvicorn]

For each server (keep-alive timeout raised to 300 s so nothing is closed while
measuring): RSS after a warm-up, then ``--connections`` clients each send one
``GET /``, read the answer and stay connected, idle; RSS again once all are idle.
Reported: KiB per idle connection = RSS growth / connections (one process each, so
this is everything the server keeps per connection: transport, protocol, parser,
buffers).
"""

from __future__ import annotations

import argparse
import asyncio

from .common import SERVERS, get, header, raise_fd_limit, rss_kib, running

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def one(port: int, keep: list[asyncio.StreamWriter], sem: asyncio.Semaphore) -> None:
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        await reader.readuntil(b"Hello, world!")
        keep.append(writer)


async def measure(pid: int, port: int, connections: int) -> tuple[int, int, int]:
    for _ in range(200):
        await get(port, "/")
    await asyncio.sleep(0.5)
    before = rss_kib(pid)
    keep: list[asyncio.StreamWriter] = []
    sem = asyncio.Semaphore(256)
    await asyncio.gather(*(one(port, keep, sem) for _ in range(connections)))
    await asyncio.sleep(2.0)  # let the server settle (the once-a-second tick ran)
    after = rss_kib(pid)
    opened = len(keep)
    for writer in keep:
        writer.close()
    return before, after, opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    args = parser.parse_args()
    raise_fd_limit(args.connections + 500)
    header(f"idle keep-alive connections: {args.connections}")
    for server in args.servers:
        with running(server, timeout_keep_alive=300) as (proc, port):
            before, after, opened = asyncio.run(measure(proc.pid, port, args.connections))
        rss = f"RSS {before / 1024:7.1f} MiB -> {after / 1024:7.1f} MiB"
        print(f"{server:10} {rss} with {opened} idle connections: {(after - before) / opened:5.1f} KiB each")


if __name__ == "__main__":
    main()
