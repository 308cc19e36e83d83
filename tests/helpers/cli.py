"""``python -m blazeasgi`` in a subprocess: ``Blaze`` (stderr read line by line),
``run_cli`` for a command that exits, and the one-line error check."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


APPS = "tests.apps.cli_apps"


TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Blaze:
    """A running ``python -m blazeasgi`` with its stderr collected line by line."""

    def __init__(
        self,
        args: list[str],
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
        stdout: int = subprocess.PIPE,
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "blazeasgi", *args],
            cwd=cwd,
            env=env,
            pass_fds=pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        """The next stderr line containing ``text``."""
        return self.wait_for_match(re.escape(text), timeout).string

    def wait_for_match(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The next stderr line matching the regular expression ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} within {timeout}s; stderr so far: {self.log}") from None
            if line is None:
                raise AssertionError(f"exited ({self.proc.wait(5)}) before {pattern!r}; stderr: {self.log}")
            self.log.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        while (line := self.lines.get_nowait() if not self.lines.empty() else None) is not None:
            self.log.append(line)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def start_tcp(blaze, target: str, *args: str) -> tuple[Blaze, str]:
    port = free_port()
    b = blaze(target, "--port", str(port), *args)
    b.wait_for(f"Serving on http://127.0.0.1:{port}")
    return b, f"http://127.0.0.1:{port}"


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``python -m blazeasgi ARGS`` run to its exit (stdout and stderr captured)."""
    return subprocess.run(
        [sys.executable, "-m", "blazeasgi", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def assert_one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 1, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("Error:"), out.stderr
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in lines[0]
