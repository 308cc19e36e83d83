"""The HTTP/2 load generator: h2load (nghttp2) run once and its summary parsed, and one
HTTP/2 request with prior knowledge to check a server's answer before any load.

Every HTTP/2 cell is h2c with prior knowledge on the cleartext port: every server in
the set accepts it (blazeasgi, uvicorn with zttp and ``--http2``, Granian ``--http
auto``, Hypercorn), so no TLS cost hides the server's own work. h2load opens
``connections`` connections and keeps ``streams`` requests in flight on each (``-m``).

h2load's counts (nghttp2's doc/h2load.h2r): *succeeded* is a 2xx or 3xx answer;
*failed* includes the *errored* requests (resets, connection errors) and the non-2xx/3xx
answers; *timeout* is a subset of *errored*. The tables count as errors every request
that did not end with a 2xx: ``total - 2xx``. In a timed run (``-D``) h2load's *total*
is what was done: the requests still in flight when the time is up (``started - done``)
are neither done nor errors.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from blazeasgi.benchprocess import Reply
from blazeasgi.wrk import BenchError

H2LOAD_MISSING = (
    "h2load (the HTTP/2 load generator of nghttp2) is not installed: "
    "`apt-get install -y nghttp2-client` on Debian/Ubuntu, `brew install nghttp2` on macOS"
)

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_FINISHED = re.compile(r"^finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s, ")
_REQUESTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_TRAFFIC = re.compile(r"^traffic: \S+ \((\d+)\) total, \S+ \((\d+)\) headers .*, \S+ \((\d+)\) data")
_REQUEST_TIME = re.compile(r"^time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)")
_PROTOCOL = re.compile(r"^Application protocol: (\S+)")


@dataclass(frozen=True)
class H2loadResult:
    """One h2load run: its request counts, status classes, bytes and request times (µs)."""

    duration_s: float
    rps: float
    total: int
    started: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timeouts: int
    statuses: dict[str, int]
    bytes: int
    protocol: str | None
    request_time_us: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Requests asked for that did not end with a 2xx: failed, reset, timed out,
        never sent (the connection failed), or answered 3xx/4xx/5xx."""
        return max(self.total - self.statuses.get("2xx", 0), 0)

    @property
    def transfer_per_s(self) -> float:
        return self.bytes / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The keys of a wrk run's record (the tables and charts read those), and h2load's own."""
        return {
            "requests": self.done,
            "duration_s": self.duration_s,
            "bytes": self.bytes,
            "rps": round(self.rps, 2),
            "transfer_per_s": round(self.transfer_per_s, 2),
            "connect_errors": 0,
            "read_errors": 0,
            "write_errors": 0,
            "status_errors": max(self.done - self.statuses.get("2xx", 0), 0),
            "timeouts": self.timeouts,
            "latency_us": {},  # h2load gives no percentiles: see request_time_us
            "errors": self.errors,
            "h2load": {
                "total": self.total,
                "started": self.started,
                "done": self.done,
                "succeeded": self.succeeded,
                "failed": self.failed,
                "errored": self.errored,
                "timeout": self.timeouts,
                "status_codes": dict(self.statuses),
                "protocol": self.protocol,
            },
            "request_time_us": dict(self.request_time_us),
        }


def _seconds(value: str, unit: str) -> float:
    return float(value) * _UNITS_S[unit]


def parse_h2load_output(text: str) -> H2loadResult:
    """Read h2load's summary (the lines after "finished in"); BenchError when it is absent."""
    found: dict[str, re.Match[str]] = {}
    protocol = None
    for line in text.splitlines():
        line = line.strip()
        if (m := _PROTOCOL.match(line)) and protocol is None:
            protocol = m.group(1)
        for key, pattern in (
            ("finished", _FINISHED),
            ("requests", _REQUESTS),
            ("status", _STATUS),
            ("traffic", _TRAFFIC),
            ("time", _REQUEST_TIME),
        ):
            if m := pattern.match(line):
                found[key] = m
    missing = [k for k in ("finished", "requests", "status", "traffic") if k not in found]
    if missing:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise BenchError(f"h2load printed no summary ({', '.join(missing)} missing; {tail or 'no output'})")
    finished, requests, status = found["finished"], found["requests"], found["status"]
    total, started, done, succeeded, failed, errored, timeouts = (int(g) for g in requests.groups())
    request_time: dict[str, float] = {}
    if "time" in found:
        g = found["time"].groups()
        for i, name in enumerate(("min", "max", "mean")):
            request_time[name] = round(_seconds(g[2 * i], g[2 * i + 1]) * 1e6, 1)
    return H2loadResult(
        duration_s=_seconds(finished.group(1), finished.group(2)),
        rps=float(finished.group(3)),
        total=total,
        started=started,
        done=done,
        succeeded=succeeded,
        failed=failed,
        errored=errored,
        timeouts=timeouts,
        statuses=dict(zip(("2xx", "3xx", "4xx", "5xx"), (int(g) for g in status.groups()), strict=True)),
        bytes=int(found["traffic"].group(1)),
        protocol=protocol,
        request_time_us=request_time,
    )


def median_h2load(results: Sequence[H2loadResult]) -> H2loadResult:
    """The run with the median req/s (a real run, as for wrk)."""
    if not results:
        raise ValueError("no results")
    return sorted(results, key=lambda r: r.rps)[(len(results) - 1) // 2]


def find_h2load() -> str:
    """The h2load executable, or BenchError saying how to install it."""
    path = shutil.which("h2load")
    if path is None:
        raise BenchError(H2LOAD_MISSING)
    return path


def h2load_command(
    h2load: str,
    url: str,
    connections: int,
    streams: int,
    *,
    duration: int | None = None,
    requests: int | None = None,
    data_path: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    threads: int = 1,
    prefix: Sequence[str] = (),
) -> list[str]:
    """h2load for ``duration`` seconds (``-D``), or for ``requests`` requests (``-n``)."""
    if (duration is None) == (requests is None):
        raise ValueError("give a duration or a request count")
    threads = max(1, min(threads, connections))
    argv = [*prefix, h2load, "-t", str(threads), "-c", str(max(connections, threads)), "-m", str(streams)]
    argv += ["-D", str(max(1, int(duration)))] if duration is not None else ["-n", str(requests)]
    if data_path is not None:
        argv += ["-d", data_path]
    for name, value in headers:
        argv += ["-H", f"{name}: {value}"]
    return [*argv, url]


@contextlib.contextmanager
def _body_file(body: bytes | None) -> Iterator[str | None]:
    if body is None:
        yield None
        return
    with tempfile.NamedTemporaryFile(prefix="bench-h2-", suffix=".body") as f:
        f.write(body)
        f.flush()
        yield f.name


def run_h2load(
    url: str,
    connections: int,
    streams: int,
    *,
    duration: int | None = None,
    requests: int | None = None,
    body: bytes | None = None,
    headers: Sequence[tuple[str, str]] = (),
    h2load: str | None = None,
    threads: int = 1,
    prefix: Sequence[str] = (),
    timeout: float = 60.0,
) -> H2loadResult:
    """Run h2load once (killed ``timeout`` s after its duration) and parse its summary.

    A run that did not speak h2c is a BenchError: the figures would be HTTP/1.1's.
    """
    exe = h2load or find_h2load()
    with _body_file(body) as data_path:
        argv = h2load_command(
            exe, url, connections, streams, duration=duration, requests=requests,
            data_path=data_path, headers=headers, threads=threads, prefix=prefix,
        )  # fmt: skip
        limit = (duration or 0) + timeout
        try:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=limit, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"h2load did not finish within {limit:.0f} s") from exc
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip() or out.strip()
        raise BenchError(
            f"h2load failed with status {proc.returncode}: {err.splitlines()[-1] if err else ''}"
        )
    result = parse_h2load_output(out)
    if result.protocol != "h2c" and result.done:
        raise BenchError(f"h2load spoke {result.protocol or 'no protocol'}, not h2c")
    return result


# -- one request, to check the answer -----------------------------------------------------------


def h2c_request(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> Reply:
    """One HTTP/2 request with prior knowledge on a fresh connection (the h2 library,
    which Hypercorn depends on: present wherever the bench extra is installed)."""
    try:
        import h2.exceptions
    except ImportError as exc:
        raise BenchError("the h2 package is needed to check HTTP/2 answers (pip install h2)") from exc
    try:
        return _h2c_exchange(port, path, method, body, headers or {}, host, timeout)
    except h2.exceptions.H2Error as exc:  # the server broke the protocol
        raise BenchError(f"{method} {path} over HTTP/2: {type(exc).__name__}: {exc}") from exc


def _h2c_exchange(
    port: int, path: str, method: str, body: bytes | None, headers: dict[str, str], host: str, timeout: float
) -> Reply:
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.increment_flow_control_window(1 << 30)  # never the reason a download stalls
    stream = conn.get_next_available_stream_id()
    fields = [(":method", method), (":scheme", "http"), (":authority", f"{host}:{port}"), (":path", path)]
    fields += [(name.lower(), value) for name, value in headers.items()]
    conn.send_headers(stream, fields, end_stream=not body)
    pending = memoryview(body or b"")
    status, reply_headers, received = 0, [], bytearray()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        while True:
            while pending:
                size = min(len(pending), conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
                if size <= 0:
                    break  # wait for a WINDOW_UPDATE
                conn.send_data(stream, pending[:size].tobytes(), end_stream=size == len(pending))
                pending = pending[size:]
            sock.sendall(conn.data_to_send())
            data = sock.recv(1 << 16)
            if not data:
                raise BenchError(f"the connection closed before the answer to {method} {path} ended")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                    reply_headers = [(str(k), str(v)) for k, v in event.headers or []]
                    status = int(dict(reply_headers).get(":status", "0"))
                    reply_headers = [(k, v) for k, v in reply_headers if not k.startswith(":")]
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                    received += event.data or b""
                    conn.acknowledge_received_data(event.flow_controlled_length or 0, stream)
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                    raise BenchError(
                        f"{method} {path}: the server reset the stream (code {event.error_code})"
                    )
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise BenchError(f"{method} {path}: GOAWAY (code {event.error_code}) before the answer")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    sock.sendall(conn.data_to_send())
                    return Reply(status, reply_headers, bytes(received))
