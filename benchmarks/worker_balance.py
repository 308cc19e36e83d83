"""How evenly --workers share the load: one shared socket vs SO_REUSEPORT.

    python -m benchmarks.worker_balance [--workers 2] [--connections 64] [--duration 5]

For each mode (``shared``: every worker accepts from the master's one socket;
``reuse-port``: each worker has its own SO_REUSEPORT socket and the kernel hashes
connections to them) and each client pattern (``keep-alive``: wrk's connections
are spread once, at connect; ``close``: every request is a new connection to
spread), this starts ``blazeasgi benchmarks.worker_balance:app`` under a master,
runs wrk against it, stops it with SIGTERM and prints how many requests each
worker served, as each worker reports at shutdown. Needs wrk on PATH.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from blazeasgi import App, Request, Response

ROOT = Path(__file__).resolve().parent.parent
MODES = {"shared": ["--no-reuse-port"], "reuse-port": ["--reuse-port"]}
PATTERNS = {"keep-alive": [], "close": ["-H", "Connection: close"]}

# -- the app: counts what this worker served, says so at shutdown ---------------------------
served = 0


def report() -> None:
    print(f"worker-balance pid={os.getpid()} served={served}", file=sys.stderr, flush=True)


app = App(on_shutdown=[report])


@app.get("/")
def hello(request: Request) -> Response:
    global served
    served += 1
    return Response(b"Hello, world!", media_type="text/plain")


# -- the harness ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(mode: str, pattern: str, workers: int, connections: int, duration: int) -> dict[str, object]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blazeasgi",
            "benchmarks.worker_balance:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            *MODES[mode],
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            if "Started" in line and "worker" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(30) or server.poll() is not None:
            raise SystemExit(f"server did not start: {''.join(lines)}")
        wrk = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{duration}s",
                *PATTERNS[pattern],
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        server.wait(60)
        reader.join(10)
    counts = sorted(
        (int(n) for n in re.findall(r"worker-balance pid=\d+ served=(\d+)", "".join(lines))), reverse=True
    )
    rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk.stdout)
    errors = re.search(r"Socket errors: (.*)", wrk.stdout)
    return {
        "mode": mode,
        "pattern": pattern,
        "rps": float(rps.group(1)) if rps else 0.0,
        "counts": counts,
        "errors": errors.group(1) if errors else "none",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--mode", choices=list(MODES), action="append")
    parser.add_argument("--pattern", choices=list(PATTERNS), action="append")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("Error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    print(f"{args.workers} workers, wrk -t2 -c{args.connections} -d{args.duration}s, {os.cpu_count()} CPUs\n")
    print("| mode | clients | req/s | requests per worker | busiest share | max/min | wrk errors |")
    print("|---|---|---:|---|---:|---:|---|")
    for mode in args.mode or list(MODES):
        for pattern in args.pattern or list(PATTERNS):
            r = measure(mode, pattern, args.workers, args.connections, args.duration)
            counts: list[int] = r["counts"]  # type: ignore[assignment]
            total = sum(counts) or 1
            share = f"{100 * counts[0] / total:.0f}%" if counts else "-"
            spread = f"{counts[0] / counts[-1]:.2f}" if counts and counts[-1] else "inf"
            shown = " / ".join(str(n) for n in counts)
            print(f"| {mode} | {pattern} | {r['rps']:.0f} | {shown} | {share} | {spread} | {r['errors']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
