"""``blazeasgi bench``: your own app on blazeasgi and on uvicorn, same load, side by side.

    blazeasgi bench myapp:app [--path /route ...] [--connections N] [--duration S]

An ASGI app runs on blazeasgi and on uvicorn; a mixed-mode app (a native ``App``
with an ASGI ``fallback``) runs its native routes against the same routes through
the fallback (on blazeasgi and on uvicorn). Every path is first requested once on
each server, and benchmarked only where all of them answer with the same status.

The load generator is ``wrk``. With two or more cores the server runs on one core
and wrk on another (``taskset``). The wrk runner and parser, server processes,
pinning and tables are blazeasgi/wrk.py, shared with ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .apploader import AppLoadError, import_from_string
from .benchprocess import (
    ServerProcess,
    free_port,
    http_request,
    module_available,
    pinning,
    raise_fd_limit,
    sigterm_as_interrupt,
)
from .native.app import App
from .wrk import (
    BenchError,
    WrkResult,
    find_wrk,
    fmt_latency,
    fmt_ratio,
    fmt_rps,
    lua_script,
    markdown_table,
    median_result,
    run_wrk,
)

UVICORN_MISSING = (
    "uvicorn is not installed: pip install 'uvicorn[standard]' (or pip install 'blazeasgi[bench]')"
)


@dataclass
class Contender:
    """One server running the user's app (or its fallback)."""

    label: str
    argv: Callable[[int], list[str]]


def blazeasgi_argv(target: str, port: int, app_dir: str, factory: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "blazeasgi", target, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--no-access-log", "--log-level", "warning", "--app-dir", app_dir]
    return argv + (["--factory"] if factory else [])


def uvicorn_argv(target: str, port: int, app_dir: str, factory: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--no-access-log", "--log-level", "warning", "--app-dir", app_dir]
    if module_available("httptools"):
        argv += ["--http", "httptools"]
    if module_available("uvloop"):
        argv += ["--loop", "uvloop"]
    return argv + (["--factory"] if factory else [])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="blazeasgi bench",
        description=(
            "Run your app on blazeasgi and on uvicorn under the same wrk load and compare, "
            "path by path. A mixed-mode app (App(fallback=...)) also runs its native routes "
            "against the same routes through the ASGI fallback."
        ),
    )
    p.add_argument("app", help="the application as module:attribute, e.g. main:app")
    p.add_argument(
        "--path",
        action="append",
        dest="paths",
        metavar="PATH",
        help="a GET path to load, query string allowed (repeatable; default: /)",
    )
    p.add_argument("--connections", "-c", type=int, default=64, help="open connections (default: 64)")
    p.add_argument("--duration", "-d", type=int, default=10, help="seconds of load per path (default: 10)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (default: 2)")
    p.add_argument("--runs", type=int, default=1, help="measured runs per path; the median is shown")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default: 1)")
    p.add_argument(
        "--close",
        action="store_true",
        help="a new connection per request (Connection: close), as behind a default nginx upstream",
    )
    p.add_argument("--app-dir", default=".", help="directory added to sys.path before importing (default: .)")
    p.add_argument("--factory", action="store_true", help="APP is a factory called with no arguments")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and wrk to separate cores")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    return p


def _detect(target: str, app_dir: str, factory: bool) -> tuple[str, Any]:
    """("native" | "mixed" | "asgi", the loaded object)."""
    entry = os.path.abspath(app_dir)
    sys.path.insert(0, entry)
    try:
        obj = import_from_string(target, factory)
    except AppLoadError as exc:
        raise BenchError(str(exc)) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
    if isinstance(obj, App):
        return ("mixed" if obj.fallback is not None else "native"), obj
    if not callable(obj):
        raise BenchError(f"{target} is neither a blazeasgi App nor an ASGI callable")
    return "asgi", obj


def contenders_for(kind: str, target: str, app_dir: str, factory: bool) -> tuple[list[Contender], str]:
    """The servers to compare for an app of this kind, and a note for the user."""
    blaze = Contender("blazeasgi", lambda port: blazeasgi_argv(target, port, app_dir, factory))
    if kind == "native":
        return [blaze], "a native App without an ASGI fallback cannot run on uvicorn: blazeasgi alone"
    if not module_available("uvicorn"):
        raise BenchError(UVICORN_MISSING)
    if kind == "asgi":
        return [blaze, Contender("uvicorn", lambda port: uvicorn_argv(target, port, app_dir, factory))], ""
    if factory:
        raise BenchError("--factory with a mixed-mode App: name the App itself so its fallback can be served")
    fallback = f"{target}.fallback"
    return [
        Contender("blazeasgi (mixed)", blaze.argv),
        Contender("blazeasgi (fallback)", lambda port: blazeasgi_argv(fallback, port, app_dir)),
        Contender("uvicorn (fallback)", lambda port: uvicorn_argv(fallback, port, app_dir)),
    ], "mixed mode: the App's native routes against the same paths through its ASGI fallback"


def _route_kind(app: Any, path: str) -> str:
    """'native' when a mixed App answers GET ``path`` with a native handler, else 'fallback'."""
    router = getattr(app, "router", None)
    if router is None:
        return ""
    endpoint, _, _ = router.resolve(unquote(path.split("?", 1)[0]), "GET")
    return "native" if endpoint is not None else "fallback"


def _check_statuses(
    contenders: Sequence[Contender], paths: Sequence[str], prefix: Sequence[str], cwd: str
) -> tuple[list[str], list[str]]:
    """Start each server once and GET every path; keep the paths where all statuses agree."""
    statuses: dict[str, list[int]] = {p: [] for p in paths}
    for contender in contenders:
        port = free_port()
        with ServerProcess(contender.label, contender.argv(port), port, prefix=prefix, cwd=cwd) as server:
            server.wait_ready(paths[0])
            for path in paths:
                try:
                    statuses[path].append(http_request(port, path).status)
                except (OSError, http.client.HTTPException) as exc:
                    raise BenchError(f"{contender.label}: GET {path} failed: {exc}") from None
    ok, problems = [], []
    for path in paths:
        got = statuses[path]
        if len(set(got)) == 1:
            ok.append(path)
            if not 200 <= got[0] < 400:
                problems.append(f"note: {path} answers {got[0]} on every server (benchmarked anyway)")
        else:
            pairs = ", ".join(f"{c.label} {s}" for c, s in zip(contenders, got, strict=True))
            problems.append(f"skipped {path}: the servers disagree on its status ({pairs})")
    return ok, problems


def main(argv: list[str]) -> int:
    """``blazeasgi bench``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with sigterm_as_interrupt():
            return _bench(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _bench(args: argparse.Namespace) -> int:
    paths = args.paths or ["/"]
    if any(not p.startswith("/") for p in paths):
        print("Error: each --path must start with '/'", file=sys.stderr)
        return 2
    if args.connections < 1 or args.duration < 1 or args.runs < 1 or args.warmup < 0:
        print("Error: --connections, --duration and --runs must be positive", file=sys.stderr)
        return 2
    try:
        wrk = find_wrk()
        kind, app = _detect(args.app, args.app_dir, args.factory)
        contenders, note = contenders_for(kind, args.app, args.app_dir, args.factory)
    except BenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    raise_fd_limit(args.connections + 1024)
    server_cpu, wrk_cpu = pinning(not args.no_pin)
    cwd = os.getcwd()
    print(
        f"blazeasgi bench {args.app}: {kind} app, {len(paths)} path(s), "
        f"c={args.connections}, {args.duration} s per run"
        + (", a new connection per request" if args.close else "")
    )
    if note:
        print(note)
    if server_cpu:
        print(f"server pinned to CPU {server_cpu[-1]}, wrk to CPU {wrk_cpu[-1]}")
    try:
        ok_paths, problems = _check_statuses(contenders, paths, server_cpu, cwd)
    except BenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    for line in problems:
        print(line)
    if not ok_paths:
        print("Error: no path answered the same on every server; nothing to benchmark", file=sys.stderr)
        return 1

    results: dict[str, dict[str, WrkResult]] = {p: {} for p in ok_paths}
    script = lua_script(headers={"Connection": "close"} if args.close else None)
    total, step = len(contenders) * len(ok_paths), 0
    try:
        for contender in contenders:
            port = free_port()
            with ServerProcess(
                contender.label, contender.argv(port), port, prefix=server_cpu, cwd=cwd
            ) as server:
                server.wait_ready(ok_paths[0])
                for path in ok_paths:
                    step += 1
                    print(f"[{step}/{total}] {contender.label} {path} …", end=" ", flush=True)
                    url = f"http://127.0.0.1:{port}{path}"
                    for seconds in [args.warmup] if args.warmup else []:
                        run_wrk(
                            url,
                            args.connections,
                            seconds,
                            script,
                            wrk=wrk,
                            threads=args.threads,
                            prefix=wrk_cpu,
                        )
                    runs = [
                        run_wrk(
                            url,
                            args.connections,
                            args.duration,
                            script,
                            wrk=wrk,
                            threads=args.threads,
                            prefix=wrk_cpu,
                        )
                        for _ in range(args.runs)
                    ]
                    best = results[path][contender.label] = median_result(runs)
                    print(f"{fmt_rps(best.rps)} req/s, p99 {fmt_latency(best.latency_us.get('p99'))}")
    except BenchError as exc:
        print(f"\nError: {exc}", file=sys.stderr)
        return 1

    print()
    print(render_bench_table(contenders, results, app if kind == "mixed" else None))
    if args.json:
        payload = {
            "app": args.app,
            "kind": kind,
            "connections": args.connections,
            "new_connection_per_request": args.close,
            "duration_s": args.duration,
            "results": {p: {k: v.to_dict() for k, v in r.items()} for p, r in results.items()},
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def render_bench_table(
    contenders: Sequence[Contender], results: dict[str, dict[str, WrkResult]], mixed_app: Any = None
) -> str:
    """The per-path table: req/s and p99 per server, then the first server's ratio to each other."""
    labels = [c.label for c in contenders]
    header = ["path"]
    for label in labels:
        header += [f"{label} req/s", "p99"]
    header += [f"vs {other}" for other in labels[1:]]
    rows = []
    for path, by_server in results.items():
        shown = path if mixed_app is None else f"{path} ({_route_kind(mixed_app, path)})"
        row = [shown]
        for label in labels:
            res = by_server.get(label)
            row += [
                fmt_rps(res.rps if res else None),
                fmt_latency(res.latency_us.get("p99") if res else None),
            ]
        first = by_server.get(labels[0])
        for other in labels[1:]:
            base = by_server.get(other)
            row.append(fmt_ratio(first.rps if first else None, base.rps if base else None))
        rows.append(row)
    table = markdown_table(header, rows, "l" + "r" * (len(header) - 1))
    if len(labels) > 1:
        table += f"\n\nvs: {labels[0]}'s req/s divided by the other server's on the same path."
    return table


if __name__ == "__main__":  # pragma: no cover - `python -m blazeasgi.bench`
    sys.exit(main(sys.argv[1:]))
