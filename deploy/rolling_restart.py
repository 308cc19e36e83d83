"""Rolling restart of blazeasgi instances behind nginx, under load, with figures.

    python -m deploy.rolling_restart myapp:app --instances 2 --rounds 1

Starts N instances of the app (``python -m blazeasgi``) on free loopback ports,
nginx in front of them with deploy/nginx.conf, and continuous load through nginx
(wrk when installed, else keep-alive clients in threads). Then restarts the
instances one at a time: SIGTERM and wait for the exit (blazeasgi drains), start
it again, wait until it answers directly and until nginx sends it traffic again;
only then the next one. The last wait matters: nginx keeps a refused instance
marked down for fail_timeout, and stopping the next instance while the restarted
one is still marked down would leave nginx with no live instance.

Prints requests sent and failed, how many requests nginx retried on another
instance (failures the client never saw) and how long each step took. Exits 1
when any request failed. tests/project/test_deploy_nginx.py runs the same code.

Each instance finds its name (a, b, ...) in $BLAZE_INSTANCE.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

NGINX_CONF = Path(__file__).resolve().parent / "nginx.conf"

#: Passed as --timeout-keep-alive: above the upstream keepalive_timeout in
#: nginx.conf (60 s) so that nginx, not the instance, closes idle connections.
KEEP_ALIVE_TIMEOUT = 75
#: Python start-up, app import and bind; generous for a loaded CI machine.
START_TIMEOUT = 30.0
#: blazeasgi's default --timeout-graceful-shutdown (30 s) plus a margin.
STOP_TIMEOUT = 45.0
#: nginx probes a refused instance again after fail_timeout (2 s in nginx.conf).
ROUTE_TIMEOUT = 20.0


class DeployError(Exception):
    """The harness could not do its job: a binary missing, an instance that won't start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_nginx() -> str | None:
    """nginx lives in sbin, which is not on every user's PATH."""
    found = shutil.which("nginx")
    if found is not None:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def http_get(port: int, path: str = "/", timeout: float = 2.0) -> tuple[int, bytes]:
    """One GET on a fresh connection to 127.0.0.1:port: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _tail(path: Path, lines: int = 4) -> str:
    """The end of a log file on one line, for one-line error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(line for line in text.strip().splitlines()[-lines:]) or "(empty log)"


# -- the instances ---------------------------------------------------------------------------


class Instance:
    """One ``python -m blazeasgi`` process on a fixed loopback port.

    Its output goes to ``<workdir>/<name>.log``: a pipe nobody reads would block
    the server once full. The port stays the same across restarts, as it would
    in a balancer's configuration.
    """

    def __init__(
        self,
        name: str,
        app: str,
        port: int,
        workdir: Path,
        *,
        app_dir: str | None = None,
        loop: str = "auto",
        cwd: Path | None = None,
        server_args: Sequence[str] = (),
        health_path: str = "/",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.app = app
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.log_path = workdir / f"instance-{name}.log"
        self.app_dir = app_dir
        self.loop = loop
        self.cwd = cwd
        self.server_args = list(server_args)
        self.health_path = health_path
        self.env = {**os.environ, **(env or {}), "BLAZE_INSTANCE": name}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "blazeasgi", self.app, "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--loop", self.loop, "--timeout-keep-alive", str(KEEP_ALIVE_TIMEOUT), "--no-access-log"]
        if self.app_dir is not None:
            cmd += ["--app-dir", self.app_dir]
        return cmd + self.server_args

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the instance answers its health path with 200, asked directly."""
        proc = self._running()
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise DeployError(
                    f"instance {self.name} exited with {proc.returncode} while starting: "
                    f"{_tail(self.log_path)}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_get(self.port, self.health_path, timeout=1.0)[0] == 200:
                    return
            if time.monotonic() > deadline:
                raise DeployError(
                    f"instance {self.name} did not answer GET {self.health_path} with 200 on port "
                    f"{self.port} within {timeout:g} s: {_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (blazeasgi drains), then wait for the exit; the exit code."""
        proc = self._running()
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DeployError(f"instance {self.name} did not exit within {timeout:g} s of SIGTERM") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _running(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise DeployError(f"instance {self.name} was never started")
        return self.proc


# -- nginx -----------------------------------------------------------------------------------

_UPSTREAM_SERVER = re.compile(r"server\s+[^\s{;]+:\d+(?P<params>[^;]*);")


def render_nginx_conf(template: str, listen: int, upstreams: Sequence[str], worker_processes: int) -> str:
    """deploy/nginx.conf with this run's listen port, instances and worker count.

    Rewrites the ``worker_processes`` and ``listen`` lines and replaces the
    upstream's ``server host:port ...;`` lines with one per instance, keeping
    the parameters (max_fails, fail_timeout) of the first.
    """
    out: list[str] = []
    found = {"worker_processes": False, "listen": False, "server": False}
    for line in template.splitlines():
        stripped = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if stripped.startswith("worker_processes "):
            line, found["worker_processes"] = f"{indent}worker_processes {worker_processes};", True
        elif stripped.startswith("listen "):
            line, found["listen"] = f"{indent}listen 127.0.0.1:{listen};", True
        elif (match := _UPSTREAM_SERVER.fullmatch(stripped)) is not None:
            if found["server"]:
                continue
            found["server"] = True
            out.extend(f"{indent}server {address}{match['params']};" for address in upstreams)
            continue
        out.append(line)
    missing = [name for name, seen in found.items() if not seen]
    if missing:
        raise DeployError(f"{NGINX_CONF.name} has no {', '.join(missing)} line to fill in")
    return "\n".join(out) + "\n"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of nginx's access log (the ``upstream`` format of nginx.conf)."""

    status: int
    #: Every instance nginx tried for the request, in order, and what each gave.
    upstreams: tuple[str, ...]
    upstream_statuses: tuple[str, ...]


_LOG_LINE = re.compile(r'" (?P<status>\d{3}) \d+ rt=\S+ ua="(?P<ua>[^"]*)" us="(?P<us>[^"]*)"')
# nginx separates the servers it tried with ", " and internal redirects with " : ".
_LOG_LIST = re.compile(r",\s*|\s+:\s+")


def parse_log_line(line: str) -> LogEntry | None:
    match = _LOG_LINE.search(line)
    if match is None:
        return None
    return LogEntry(
        int(match["status"]),
        tuple(_LOG_LIST.split(match["ua"])) if match["ua"] != "-" else (),
        tuple(_LOG_LIST.split(match["us"])) if match["us"] != "-" else (),
    )


class Nginx:
    """nginx as a child process (``daemon off``), everything it writes under one prefix."""

    def __init__(
        self, workdir: Path, port: int, upstreams: Sequence[str], binary: str, worker_processes: int = 1
    ) -> None:
        self.prefix = workdir / "nginx"
        self.port = port
        self.upstreams = list(upstreams)
        self.binary = binary
        self.worker_processes = worker_processes
        self.conf_path = self.prefix / "nginx.conf"
        self.access_log = self.prefix / "access.log"
        self.error_log = self.prefix / "error.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = render_nginx_conf(NGINX_CONF.read_text(), self.port, self.upstreams, self.worker_processes)
        if os.geteuid() == 0:
            # Started as root, the workers would run as "nobody", which cannot
            # enter a private (0700) work directory for its temp files.
            conf = "user root;\n" + conf
        self.conf_path.write_text(conf)
        with open(self.prefix / "stderr.log", "ab") as log:
            self.proc = subprocess.Popen(
                # -e: the error log before the config is read (else a system path).
                [
                    *(self.binary, "-p", f"{self.prefix}/", "-c", str(self.conf_path)),
                    *("-e", str(self.error_log), "-g", "daemon off;"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, path: str = "/", timeout: float = START_TIMEOUT) -> None:
        """Until a request through nginx comes back 200."""
        if self.proc is None:
            raise DeployError("nginx was never started")
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise DeployError(f"nginx exited with {self.proc.returncode}: {_tail(self.error_log)}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_get(self.port, path, timeout=1.0)[0] == 200:
                    return
            if time.monotonic() > deadline:
                raise DeployError(f"nginx did not answer 200 within {timeout:g} s: {_tail(self.error_log)}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_size(self) -> int:
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def entries(self, since: int = 0) -> tuple[list[LogEntry], int]:
        """Access log entries from byte offset ``since``, and the offset after them."""
        try:
            with open(self.access_log, "rb") as log:
                log.seek(since)
                data = log.read()
        except FileNotFoundError:
            return [], since
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        entries = [parse_log_line(line) for line in complete.decode(errors="replace").splitlines()]
        return [entry for entry in entries if entry is not None], since + len(complete)


# -- load ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadResult:
    sent: int
    failed: int
    #: How the failures split (wrk's error kinds, or the first client errors).
    detail: str


class Load(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> LoadResult: ...


#: wrk counts only statuses outside 2xx/3xx as errors; this counts every one but
#: 200 (per thread, summed in done) and prints the counters for the harness.
_WRK_SCRIPT = """\
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) not_ok = 0 end
response = function(status, headers, body)
  if status ~= 200 then not_ok = not_ok + 1 end
end
done = function(summary, latency, requests)
  local e, bad = summary.errors, 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("not_ok") end
  io.write(string.format("RESULT requests=%d connect=%d read=%d write=%d timeout=%d not200=%d\\n",
    summary.requests, e.connect, e.read, e.write, e.timeout, bad))
end
"""
_WRK_RESULT = re.compile(
    r"RESULT requests=(\d+) connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+) not200=(\d+)"
)


class WrkLoad:
    """wrk against one URL until stopped. A failure is any socket error, a
    timeout, or any status but 200."""

    name = "wrk"

    def __init__(self, url: str, workdir: Path, connections: int = 8, binary: str = "wrk") -> None:
        self.url = url
        self.script = workdir / "result.lua"
        self.connections = connections
        self.binary = binary
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.script.write_text(_WRK_SCRIPT)
        self.proc = subprocess.Popen(
            # -d: longer than any run; stop() ends it. --timeout: a request
            # slower than this counts as failed.
            [
                *(self.binary, "-t1", f"-c{self.connections}", "-d3600s", "--timeout", "10s"),
                *("-s", str(self.script), self.url),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> LoadResult:
        proc = self.proc
        if proc is None:
            raise DeployError("wrk was never started")
        proc.send_signal(signal.SIGINT)  # wrk stops early on SIGINT and prints its summary
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise DeployError("wrk did not stop within 20 s of SIGINT") from None
        match = _WRK_RESULT.search(output)
        if match is None:
            raise DeployError(f"wrk printed no result: {' | '.join(output.strip().splitlines()[-3:])}")
        requests, connect, read, write, timeout, not_ok = (int(n) for n in match.groups())
        socket_errors = connect + read + write + timeout
        detail = f"connect {connect}, read {read}, write {write}, timeout {timeout}, non-200 {not_ok}"
        return LoadResult(requests + socket_errors, socket_errors + not_ok, detail)


class ThreadLoad:
    """Keep-alive GETs from threads until stopped, when wrk is not installed.
    A failure is any status other than 200 or any connection error."""

    name = "threads"

    def __init__(self, port: int, path: str = "/", connections: int = 8) -> None:
        self.port = port
        self.path = path
        self.connections = connections
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counts: list[tuple[int, int]] = []
        self._errors: list[str] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.connections)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        ok = failed = 0
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    ok += 1
                    continue
                failed += 1
                self._note(f"status {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                failed += 1
                self._note(f"{type(exc).__name__}: {exc}")
                conn.close()  # the next request() reconnects
        conn.close()
        with self._lock:
            self._counts.append((ok, failed))

    def _note(self, error: str) -> None:
        with self._lock:
            if len(self._errors) < 5:
                self._errors.append(error)

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        ok = sum(count[0] for count in self._counts)
        failed = sum(count[1] for count in self._counts)
        return LoadResult(ok + failed, failed, "; ".join(self._errors) or "no errors")


# -- the procedure ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One instance restarted."""

    instance: str
    exit_code: int
    #: SIGTERM to exit: the drain.
    stop_seconds: float
    #: Start to answering its health path directly.
    start_seconds: float
    #: Answering to nginx sending it a request again.
    routed_seconds: float


@dataclass(frozen=True, slots=True)
class Report:
    load: str
    sent: int
    failed: int
    load_detail: str
    #: Requests nginx answered with anything but 200 (499, a client that went
    #: away, is left out: stopping wrk leaves some).
    proxy_errors: int
    #: Requests nginx had to send to a second instance: failures it hid.
    retried: int
    #: Requests each instance answered with 200 through nginx.
    served: dict[str, int]
    steps: tuple[Step, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.proxy_errors == 0 and all(s.exit_code == 0 for s in self.steps)

    def lines(self) -> list[str]:
        served = ", ".join(f"{name} {count}" for name, count in sorted(self.served.items()))
        lines = [
            f"load ({self.load}): {self.sent} requests sent, {self.failed} failed ({self.load_detail})",
            f"nginx: {self.proxy_errors} non-200 answers, "
            f"{self.retried} requests retried on another instance",
            f"served through nginx: {served}",
        ]
        lines += [
            f"restart {s.instance}: exit {s.exit_code}, drained in {s.stop_seconds:.2f} s, "
            f"answering after {s.start_seconds:.2f} s, back in nginx after {s.routed_seconds:.2f} s"
            for s in self.steps
        ]
        lines.append(f"rolling restart took {self.seconds:.2f} s: {'OK' if self.ok else 'FAILED'}")
        return lines


class Cluster:
    """N instances with nginx in front, in one work directory; ``with`` stops them all."""

    def __init__(
        self,
        app: str,
        workdir: Path,
        instances: int = 2,
        *,
        app_dir: str | None = None,
        loop: str = "auto",
        cwd: Path | None = None,
        server_args: Sequence[str] = (),
        health_path: str = "/",
        nginx_binary: str | None = None,
        nginx_workers: int = 1,
    ) -> None:
        binary = nginx_binary or find_nginx()
        if binary is None:
            raise DeployError("nginx not found: install it (apt-get install nginx) or pass its path")
        if not os.access(binary, os.X_OK):
            raise DeployError(f"nginx binary {binary} does not exist or is not executable")
        if instances < 2:
            raise DeployError("a rolling restart needs at least 2 instances")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.instances = [
            Instance(
                chr(ord("a") + i) if i < 26 else f"i{i}",
                app,
                free_port(),
                workdir,
                app_dir=app_dir,
                loop=loop,
                cwd=cwd,
                server_args=server_args,
                health_path=health_path,
            )
            for i in range(instances)
        ]
        self.health_path = health_path
        self.nginx = Nginx(workdir, free_port(), [i.address for i in self.instances], binary, nginx_workers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.nginx.port}{self.health_path}"

    def __enter__(self) -> Cluster:
        try:
            for instance in self.instances:
                instance.start()
            for instance in self.instances:
                instance.wait_ready()
            self.nginx.start()
            self.nginx.wait_ready(self.health_path)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.nginx.stop()
        for instance in self.instances:
            instance.kill()

    def wait_routed(self, instance: Instance, since: int, timeout: float = ROUTE_TIMEOUT) -> None:
        """Until nginx's log shows a 200 from ``instance`` after byte offset ``since``."""
        deadline = time.monotonic() + timeout
        while True:
            entries, since = self.nginx.entries(since)
            for entry in entries:
                if entry.upstreams[-1:] == (instance.address,) and entry.upstream_statuses[-1:] == ("200",):
                    return
            if time.monotonic() > deadline:
                raise DeployError(
                    f"nginx sent no request to instance {instance.name} within {timeout:g} s "
                    "(is the load running?)"
                )
            time.sleep(0.02)

    def restart(self, instance: Instance) -> Step:
        began = time.monotonic()
        exit_code = instance.stop()
        stopped = time.monotonic()
        # From here on, a 200 from this address can only come from the new process.
        mark = self.nginx.log_size()
        instance.start()
        instance.wait_ready()
        ready = time.monotonic()
        self.wait_routed(instance, mark)
        return Step(instance.name, exit_code, stopped - began, ready - stopped, time.monotonic() - ready)

    def rolling_restart(self, load: Load, rounds: int = 1) -> Report:
        """Restart every instance in turn, ``rounds`` times, with ``load`` running throughout."""
        mark = self.nginx.log_size()
        load.start()
        try:
            began = time.monotonic()
            for instance in self.instances:  # the load reaches every instance before any stops
                self.wait_routed(instance, mark)
            steps = tuple(self.restart(instance) for _ in range(rounds) for instance in self.instances)
            seconds = time.monotonic() - began
        except BaseException:
            with contextlib.suppress(Exception):
                load.stop()
            raise
        result = load.stop()
        entries, _ = self.nginx.entries(mark)
        names = {instance.address: instance.name for instance in self.instances}
        served = Counter(
            names.get(entry.upstreams[-1], entry.upstreams[-1])
            for entry in entries
            if entry.status == 200 and entry.upstreams
        )
        return Report(
            load=load.name,
            sent=result.sent,
            failed=result.failed,
            load_detail=result.detail,
            proxy_errors=sum(1 for entry in entries if entry.status not in (200, 499)),
            retried=sum(1 for entry in entries if len(entry.upstreams) > 1),
            served={instance.name: served[instance.name] for instance in self.instances},
            steps=steps,
            seconds=seconds,
        )


def make_load(kind: str, cluster: Cluster, connections: int = 8) -> Load:
    """``auto``: wrk when installed, else threads."""
    wrk = shutil.which("wrk")
    if kind == "wrk" or (kind == "auto" and wrk is not None):
        if wrk is None:
            raise DeployError("wrk not found: install it (apt-get install wrk) or use --load threads")
        return WrkLoad(cluster.url, cluster.workdir, connections, wrk)
    return ThreadLoad(cluster.nginx.port, cluster.health_path, connections)


# -- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m deploy.rolling_restart",
        description="Restart blazeasgi instances behind nginx one at a time under load; "
        "report requests sent/failed. Exit 1 if any failed.",
    )
    p.add_argument("app", help="the application as module:attribute, e.g. main:app")
    p.add_argument("--app-dir", help="directory to import the app from (blazeasgi --app-dir)")
    p.add_argument("--instances", type=int, default=2, help="instances behind nginx (default: 2)")
    p.add_argument("--rounds", type=int, default=1, help="times every instance is restarted (default: 1)")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help="blazeasgi --loop")
    p.add_argument(
        "--load",
        choices=["auto", "wrk", "threads"],
        default="auto",
        help="load generator (default: wrk if found)",
    )
    p.add_argument("--connections", type=int, default=8, help="concurrent client connections (default: 8)")
    p.add_argument("--health-path", default="/", help="path that answers 200; the load requests it too")
    p.add_argument("--nginx", help="nginx binary (default: found on PATH or in sbin)")
    p.add_argument("--workdir", type=Path, help="keep configs and logs here (default: a temp dir, removed)")
    return p


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="blazeasgi-rolling-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.instances < 2:
        parser.error("--instances must be at least 2: one serves while the other restarts")
    if args.rounds < 1 or args.connections < 1:
        parser.error("--rounds and --connections must be at least 1")
    try:
        with (
            _workdir(args.workdir) as workdir,
            Cluster(
                args.app,
                workdir,
                args.instances,
                app_dir=args.app_dir,
                loop=args.loop,
                health_path=args.health_path,
                nginx_binary=args.nginx,
            ) as cluster,
        ):
            report = cluster.rolling_restart(make_load(args.load, cluster, args.connections), args.rounds)
    except (DeployError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
