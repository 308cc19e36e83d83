"""Graceful shutdown under load: SIGTERM while requests are in flight.

    python -m benchmarks.attacks.shutdown [--in-flight 200] [--idle 50] [--servers blazeasgi uvicorn]

For each server (``--timeout-graceful-shutdown 30``): ``--idle`` keep-alive clients
make one request and stay connected; ``--in-flight`` clients each send
``GET /slow?ms=2000`` on their own connection; 0.5 s later the server gets SIGTERM.
Reported: in-flight requests completed with 200 (and how many of those responses
said ``connection: close``), what the idle keep-alive clients saw (closed without
a response, or still open), the exit code and seconds from SIGTERM to exit.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from .common import SERVERS, header, raise_fd_limit, running

SLOW = b"GET /slow?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n"
HELLO = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def in_flight(port: int, results: list[tuple[int, bool]], ready: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(SLOW)
        ready.set()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 40)
        body = await asyncio.wait_for(reader.read(), 40)  # to the close
        status = int(head.split(b" ", 2)[1])
        results.append(
            (status if body.startswith(b"slow") else -status, b"connection: close" in head.lower())
        )
        writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        results.append((0, False))


async def idle(port: int, outcome: list[str], started: asyncio.Event, stopped: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HELLO)
    await reader.readuntil(b"Hello, world!")
    started.set()
    await stopped.wait()
    try:
        data = await asyncio.wait_for(reader.read(), 35)
        outcome.append("closed" if not data else "answered")
    except TimeoutError:
        outcome.append("still open")
    except OSError:
        outcome.append("reset")
    writer.close()


async def run(proc: object, port: int, n_busy: int, n_idle: int) -> dict[str, object]:
    results: list[tuple[int, bool]] = []
    outcomes: list[str] = []
    stopped = asyncio.Event()
    idle_started = [asyncio.Event() for _ in range(n_idle)]
    idle_tasks = [asyncio.ensure_future(idle(port, outcomes, e, stopped)) for e in idle_started]
    for e in idle_started:
        await e.wait()
    sent = [asyncio.Event() for _ in range(n_busy)]
    busy_tasks = [asyncio.ensure_future(in_flight(port, results, e)) for e in sent]
    for e in sent:
        await e.wait()
    await asyncio.sleep(0.5)
    proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    t0 = time.monotonic()
    stopped.set()
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, proc.wait, 60)  # type: ignore[attr-defined]
    exit_s = time.monotonic() - t0
    await asyncio.gather(*busy_tasks, *idle_tasks)
    return {
        "completed": sum(1 for s, _ in results if s == 200),
        "with_close": sum(1 for s, c in results if s == 200 and c),
        "failed": sum(1 for s, _ in results if s != 200),
        "idle": {k: outcomes.count(k) for k in sorted(set(outcomes))},
        "code": code,
        "exit_s": exit_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--idle", type=int, default=50)
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    args = parser.parse_args()
    raise_fd_limit(2 * (args.in_flight + args.idle) + 100)
    header(
        f"SIGTERM with {args.in_flight} requests in flight (2 s each) and {args.idle} idle keep-alive clients"
    )
    for server in args.servers:
        with running(server, timeout_graceful_shutdown=30) as (proc, port):
            r = asyncio.run(run(proc, port, args.in_flight, args.idle))
        print(
            f"{server:10} in flight: {r['completed']}/{args.in_flight} completed"
            f" ({r['with_close']} with connection: close, {r['failed']} failed);"
            f" idle keep-alive: {r['idle']}; exit code {r['code']} after {r['exit_s']:.1f} s"
        )


if __name__ == "__main__":
    main()
