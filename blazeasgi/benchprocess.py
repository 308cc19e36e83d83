"""The servers under measurement and the machine they run on: ports, taskset
pinning, the open-files limit, a server started as a subprocess and awaited until
it answers, one plain HTTP request, and SIGTERM turned into KeyboardInterrupt so
that a terminated benchmark still stops its servers.

Shared by ``blazeasgi bench`` and ``python -m benchmarks``; wrk itself is run by
blazeasgi/wrk.py.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from .wrk import BenchError


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
