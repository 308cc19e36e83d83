"""The wrk harness: Lua scripts for wrk, wrk run once and its summary parsed, and
the figures and Markdown tables the reports print.

``blazeasgi bench`` (blazeasgi/bench.py) and ``python -m benchmarks``, the project's
side-by-side harness, are both built on these pieces; the servers they measure are
started by blazeasgi/benchprocess.py.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

WRK_MISSING = (
    "wrk (the HTTP load generator) is not installed: `apt-get install -y wrk` on Debian/Ubuntu, "
    "`brew install wrk` on macOS"
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
    """A Lua string literal for ``value`` (bytes escaped as three decimal digits, so that
    a digit after an escaped byte is not read as part of its escape)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return '"' + "".join(f"\\{b:03d}" if not (32 <= b < 127) or b in (34, 92) else chr(b) for b in data) + '"'


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


# -- running wrk ---------------------------------------------------------------------------


def find_wrk() -> str:
    """The wrk executable, or BenchError saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise BenchError(WRK_MISSING)
    return path


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
