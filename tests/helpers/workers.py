"""``python -m blazeasgi --workers`` masters: ``Master``, the ``masters`` fixture
function (conftest registers it as ``master``), and clients counting workers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from . import cli
from .cli import ROOT, Blaze

PID_APP = "tests.apps.worker_apps:pid_app"


TIMEOUT = 20.0


class Master(Blaze):
    """A running ``python -m blazeasgi``; stderr (the workers' too) read line by line."""

    def __init__(
        self,
        args: list[str],
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        env = dict(os.environ if env is None else env)
        # blazeasgi importable from any cwd, installed or not (the master's workers inherit it).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        super().__init__(args, cwd, env=env, pass_fds=pass_fds, stdout=subprocess.DEVNULL)

    def workers(self, count: int) -> list[int]:
        """The pids of the ``count`` workers the master reports at boot."""
        match = self.wait_for_match(rf"Started {count} workers? \[([\d, ]+)\]")
        return [int(pid) for pid in match.group(1).split(", ")]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def masters() -> Iterator[Callable[..., Master]]:
    """The ``master`` fixture: start(*args, cwd=, env=, pass_fds=) -> Master; at the
    end every master is killed, and so is any worker one left behind."""
    started: list[Master] = []
    pids: list[int] = []

    def start(*args: str, cwd: Path = ROOT, **kwargs: object) -> Master:
        m = Master(list(args), cwd, **kwargs)  # type: ignore[arg-type]
        started.append(m)
        return m

    yield start
    for m in started:
        m.kill()
        # Workers of a master killed by a failing test: they stop once they see the
        # master gone, but do not leave them to the next test.
        for line in m.log:
            for pid in re.findall(r"(?:Started \d+ workers? \[|Worker \[)([\d, ]+)\]", line):
                pids.extend(int(p) for p in pid.split(", "))
    for pid in set(pids):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def get(port: int | str, path: str = "/") -> str:
    """One request on a fresh connection (TCP port or UNIX path); the body on a 200."""
    family = socket.AF_UNIX if isinstance(port, str) else socket.AF_INET
    address = port if isinstance(port, str) else ("127.0.0.1", port)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), data
    return body.decode()


class Clients:
    """Threads sending requests back to back until stopped; every outcome is kept."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.bodies: list[str] = []
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.bodies.append(get(self.port))
            except BaseException as exc:
                self.failures.append(exc)

    @property
    def pids(self) -> list[int]:
        return [int(body) for body in list(self.bodies)]

    def wait_for_pids(self, wanted: set[int] | int, timeout: float = TIMEOUT) -> None:
        """Until every pid in ``wanted`` (or that many distinct pids) has answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.failures:
            seen = set(self.pids)
            if (wanted <= seen) if isinstance(wanted, set) else (len(seen) >= wanted):
                return
            time.sleep(0.02)
        raise AssertionError(f"wanted {wanted}, seen {Counter(self.pids)}; failures: {self.failures[:3]}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except (FileNotFoundError, ProcessLookupError):
        return False


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """cli.run_cli with the workers' longer timeout."""
    return cli.run_cli(*args, env=env, timeout=TIMEOUT)
