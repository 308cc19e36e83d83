"""``blazeasgi bench``: your own app on blazeasgi and on uvicorn, same load, side by side.

    blazeasgi bench myapp:app [--path /route ...] [--connections N] [--duration S]

An ASGI app runs on blazeasgi and on uvicorn; a mixed-mode app (a native ``App``
with an ASGI ``fallback``) runs its native routes against the same routes through
the fallback (on blazeasgi and on uvicorn). Every path is first requested once on
each server, and benchmarked only where all of them answer with the same status.

The load generator is ``wrk``. With two or more cores the server runs on one core
and wrk on another (``taskset``). The pieces here (wrk runner and parser, server
processes, pinning, Markdown tables) are also what ``python -m benchmarks``, the
project's side-by-side harness, is built on.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

WRK_MISSING = (
    "wrk (the HTTP load generator) is not installed: `apt-get install -y wrk` on Debian/Ubuntu, "
    "`brew install wrk` on macOS"
)
UVICORN_MISSING = (
    "uvicorn is not installed: pip install 'uvicorn[standard]' (or pip install 'blazeasgi[bench]')"
)

#: wrk's ``done`` hook: the summary as one JSON line that ``parse_wrk_output`` reads.
DONE_LUA = r"""
local function n(x) if x ~= x or x == math.huge or x == -math.huge then return 0 end return x end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"connect\":%d,\"read\":%d," ..
    "\"write\":%d,\"status\":%d,\"timeout\":%d,\"min\":%d,\"max\":%d,\"mean\":%.2f,\"stdev\":%.2f," ..
    "\"p50\":%d,\"p75\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d}\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    n(latency.min), n(latency.max), n(latency.mean), n(latency.stdev),
    n(latency:percentile(50)), n(latency:percentile(75)), n(latency:percentile(90)),
    n(latency:percentile(99)), n(latency:percentile(99.9))))
end
"""

#: Shown where a figure or a baseline is missing (an en dash).
NA = "\u2013"

LATENCY_KEYS = ("min", "max", "mean", "stdev", "p50", "p75", "p90", "p99", "p999")


class BenchError(Exception):
    """A benchmark step failed; the message says what and why, on one line."""


def _lua_string(value: bytes | str) -> str:
    """A Lua string literal for ``value`` (every byte escaped as decimal)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return '"' + "".join(f"\\{b}" if not (32 <= b < 127) or b in (34, 92) else chr(b) for b in data) + '"'


def lua_script(
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    pipeline: int = 1,
    http10: bool = False,
) -> str:
    """The wrk script for one scenario: request shape, optional pipelining, ``done`` hook.

    ``http10`` sends HTTP/1.0 requests (no keep-alive asked: a new connection per
    request, as a default nginx upstream or a scripted client does).
    """
    lines = [f"wrk.method = {_lua_string(method)}"]
    if body is not None:
        if len(body) > 1 and body == body[:1] * len(body):
            lines.append(f"wrk.body = string.rep({_lua_string(body[:1])}, {len(body)})")
        else:
            lines.append(f"wrk.body = {_lua_string(body)}")
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    if http10:
        lines += [
            "init = function(args)",
            '  req = (wrk.format():gsub("HTTP/1%.1\\r\\n", "HTTP/1.0\\r\\n", 1))',
            "end",
            "request = function() return req end",
        ]
    elif pipeline > 1:
        lines += [
            "init = function(args)",
            "  local r = {}",
            f"  for i = 1, {pipeline} do r[i] = wrk.format() end",
            "  req = table.concat(r)",
            "end",
            "request = function() return req end",
        ]
    return "\n".join(lines) + "\n" + DONE_LUA


@dataclass(frozen=True)
class WrkResult:
    """One wrk run. Latencies in microseconds."""

    requests: int
    duration_s: float
    bytes: int
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    status_errors: int = 0
    timeouts: int = 0
    latency_us: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def transfer_per_s(self) -> float:
        return self.bytes / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": self.duration_s,
            "bytes": self.bytes,
            "rps": round(self.rps, 2),
            "transfer_per_s": round(self.transfer_per_s, 2),
            "connect_errors": self.connect_errors,
            "read_errors": self.read_errors,
            "write_errors": self.write_errors,
            "status_errors": self.status_errors,
            "timeouts": self.timeouts,
            "latency_us": dict(self.latency_us),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WrkResult:
        return cls(
            requests=int(data["requests"]),
            duration_s=float(data["duration_s"]),
            bytes=int(data["bytes"]),
            connect_errors=int(data.get("connect_errors", 0)),
            read_errors=int(data.get("read_errors", 0)),
            write_errors=int(data.get("write_errors", 0)),
            status_errors=int(data.get("status_errors", 0)),
            timeouts=int(data.get("timeouts", 0)),
            latency_us={k: float(v) for k, v in data.get("latency_us", {}).items()},
        )


def parse_wrk_output(text: str) -> WrkResult:
    """Read the ``BENCH_JSON`` line that ``DONE_LUA`` prints."""
    for line in reversed(text.splitlines()):
        if line.startswith("BENCH_JSON "):
            raw = line[len("BENCH_JSON ") :].replace("-nan", "0").replace("nan", "0").replace("inf", "0")
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise BenchError(f"unreadable wrk summary: {line!r}") from exc
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=int(data["duration_us"]) / 1e6,
                bytes=int(data["bytes"]),
                connect_errors=int(data["connect"]),
                read_errors=int(data["read"]),
                write_errors=int(data["write"]),
                status_errors=int(data["status"]),
                timeouts=int(data["timeout"]),
                latency_us={k: float(data[k]) for k in LATENCY_KEYS},
            )
    tail = " | ".join(text.strip().splitlines()[-3:])
    raise BenchError(f"wrk printed no summary ({tail or 'no output'})")


def median_result(results: Sequence[WrkResult]) -> WrkResult:
    """The run with the median req/s (a real run, so its figures stay consistent)."""
    if not results:
        raise ValueError("no results")
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


# -- machine and processes -----------------------------------------------------------------


def find_wrk() -> str:
    """The wrk executable, or BenchError saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise BenchError(WRK_MISSING)
    return path


def pinning(enabled: bool = True) -> tuple[list[str], list[str]]:
    """``taskset`` prefixes for the server and the load generator: first and second core
    when there are at least two and taskset exists, else no pinning."""
    if not enabled or not hasattr(os, "sched_getaffinity"):
        return [], []
    cores = sorted(os.sched_getaffinity(0))
    taskset = shutil.which("taskset")
    if taskset is None or len(cores) < 2:
        return [], []
    return [taskset, "-c", str(cores[0])], [taskset, "-c", str(cores[1])]


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's soft open-files limit (children inherit it); returns it."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


def http_request(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> Reply:
    """One request on a fresh connection."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


class ServerProcess:
    """A server under test in its own process group, its output kept in a temp file.

    Use as a context manager: the process (and any worker it forked) is always
    stopped on exit (``stop_signal``, then SIGKILL if it does not stop in time).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        prefix: Sequence[str] = (),
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.argv = [*prefix, *argv]
        self.port = port
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ServerProcess:
        self._log = tempfile.TemporaryFile()
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise BenchError(f"{self.name}: could not start {self.argv[0]}: {exc}") from exc
        return self

    def output(self, lines: int = 5) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:])

    def wait_ready(self, path: str = "/", timeout: float = 30.0) -> Reply:
        """Poll ``path`` until the server answers (any status); BenchError if it exits
        or does not answer within ``timeout`` seconds."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            code = self.proc.poll()
            if code is not None:
                raise BenchError(f"{self.name} exited with status {code}: {self.output() or 'no output'}")
            try:
                return http_request(self.port, path, timeout=2.0)
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} did not answer GET {path} within {timeout:.0f} s ({last}); "
                    f"output: {self.output() or 'none'}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            self._signal(self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(timeout)
        # Workers a server forked into its group must not outlive it.
        if proc is not None:
            self._signal(signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt meanwhile, so that ``with ServerProcess`` blocks
    stop their servers (which run in their own sessions) when a benchmark is terminated."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # pragma: no cover - not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _script_file(script: str) -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix="bench-", suffix=".lua")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(script)
        yield path
    finally:
        os.unlink(path)


def wrk_command(
    wrk: str,
    url: str,
    connections: int,
    duration: int,
    script_path: str,
    threads: int = 1,
    timeout: int = 8,
    prefix: Sequence[str] = (),
) -> list[str]:
    threads = max(1, min(threads, connections))
    return [
        *prefix,
        wrk,
        "-t",
        str(threads),
        "-c",
        str(max(connections, threads)),
        "-d",
        f"{max(1, int(duration))}s",
        "--timeout",
        f"{timeout}s",
        "-s",
        script_path,
        url,
    ]


def run_wrk(
    url: str,
    connections: int,
    duration: int,
    script: str,
    *,
    wrk: str | None = None,
    threads: int = 1,
    timeout: int = 8,
    prefix: Sequence[str] = (),
) -> WrkResult:
    """Run wrk once (bounded: killed ``duration + 60`` s after start) and parse it."""
    exe = wrk or find_wrk()
    with _script_file(script) as path:
        argv = wrk_command(exe, url, connections, duration, path, threads, timeout, prefix)
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=duration + 60,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"wrk did not finish within {duration + 60} s") from exc
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip() or out.strip()
        raise BenchError(f"wrk failed with status {proc.returncode}: {err.splitlines()[-1] if err else ''}")
    return parse_wrk_output(out)


# -- formatting -----------------------------------------------------------------------------


def fmt_rps(value: float | None) -> str:
    return NA if value is None else f"{value:,.0f}"


def fmt_ratio(value: float | None, baseline: float | None) -> str:
    """``value / baseline`` as ``1.23x``; an en dash when there is no baseline."""
    if value is None or not baseline or math.isnan(baseline):
        return NA
    return f"{value / baseline:.2f}x"


def fmt_latency(us: float | None) -> str:
    if us is None:
        return NA
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1e6:.2f} s"


def fmt_bytes_rate(value: float | None) -> str:
    if value is None:
        return NA
    for unit, size in (("GiB/s", 1 << 30), ("MiB/s", 1 << 20), ("KiB/s", 1 << 10)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B/s"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A Markdown table with padded columns; ``align`` is one of ``l``/``r`` per column."""
    cols = len(header)
    cells = [list(header)] + [[*row, *[""] * (cols - len(row))][:cols] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(cols)]
    align = (align + "l" * cols)[:cols]

    def line(row: Sequence[str]) -> str:
        out = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        return "| " + " | ".join(out) + " |"

    rule = [("-" * (w - 1) + ":") if a == "r" else "-" * w for w, a in zip(widths, align, strict=True)]
    return "\n".join([line(cells[0]), "| " + " | ".join(rule) + " |", *(line(r) for r in cells[1:])])


# -- `blazeasgi bench` ------------------------------------------------------------------------


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
    from .cli import AppLoadError, import_from_string
    from .native.app import App

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
