"""Listening sockets: --uds (perms, stale files), --fd, systemd activation, IPv6, host names.

``blazeasgi.sockets`` is exercised directly where only the socket matters, and
through ``python -m blazeasgi`` where the user's view (serving, one-line errors) does.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from blazeasgi.sockets import ListenError, adopt_socket, describe, open_sockets, parse_mode, systemd_fds

from ..helpers.cli import APPS, ROOT, Blaze, assert_one_line_error, run_cli


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="this host has no IPv6 loopback")


class Spawned(Blaze):
    """A Blaze of any command, started with inherited descriptors."""

    def __init__(self, cmd: list[str], pass_fds: Sequence[int] = ()) -> None:
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=pass_fds,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Blaze]]:
    started: list[Blaze] = []

    def start(*args: str, pass_fds: Sequence[int] = (), wrapper: Sequence[str] = ()) -> Blaze:
        cmd = [sys.executable, *wrapper] if wrapper else [sys.executable, "-m", "blazeasgi"]
        b = Spawned([*cmd, *args], pass_fds)
        started.append(b)
        return b

    yield start
    for b in started:
        b.kill()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~107 bytes: pytest's tmp_path can be longer.
    tmp = Path(tempfile.mkdtemp(prefix="blz", dir="/tmp"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def served_port(b: Blaze, scheme_host: str) -> int:
    line = b.wait_for(f"Serving on {scheme_host}:")
    match = re.search(re.escape(scheme_host) + r":(\d+)", line)
    assert match is not None, line
    return int(match.group(1))


# -- --uds ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "mode"), [("660", 0o660), ("0660", 0o660), ("0o600", 0o600), ("0O777", 0o777)]
)
def test_parse_mode(text: str, mode: int) -> None:
    assert parse_mode(text) == mode


@pytest.mark.parametrize("text", ["abc", "999", "0o1000", "-1", ""])
def test_parse_mode_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="mode"):
        parse_mode(text)


def test_uds_perms_flag(spawn: Callable[..., Blaze], short_tmp: Path) -> None:
    path = str(short_tmp / "app.sock")
    b = spawn(f"{APPS}:app", "--uds", path, "--uds-perms", "0o660")
    b.wait_for(f"Serving on unix:{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=5) as client:
        assert client.get("http://localhost/perms").json()["path"] == "/perms"
    assert b.stop() == 0


def test_uds_default_perms_as_uvicorn(short_tmp: Path) -> None:
    path = str(short_tmp / "default.sock")
    (sock,) = open_sockets(uds=path)
    with sock:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        assert describe(sock) == f"unix:{path}"


def test_stale_socket_file_is_replaced(short_tmp: Path) -> None:
    path = str(short_tmp / "stale.sock")
    crashed = socket.socket(socket.AF_UNIX)
    crashed.bind(path)
    crashed.close()  # the file stays behind, as after a crash
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    (sock,) = open_sockets(uds=path)
    with sock, socket.socket(socket.AF_UNIX) as client:
        client.connect(path)  # the new socket listens there


def test_live_socket_is_not_taken_over(short_tmp: Path) -> None:
    path = str(short_tmp / "live.sock")
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(path)
        live.listen()
        with pytest.raises(ListenError, match="another server is listening on unix:"):
            open_sockets(uds=path)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)  # the other server still has it
        out = run_cli(f"{APPS}:app", "--uds", path)
    assert_one_line_error(out, "another server is listening", path)


def test_regular_file_is_not_replaced(short_tmp: Path) -> None:
    path = short_tmp / "data.txt"
    path.write_text("precious")
    with pytest.raises(ListenError, match="not a socket"):
        open_sockets(uds=str(path))
    assert path.read_text() == "precious"


# -- --fd and systemd socket activation ------------------------------------------------------
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_fd(spawn: Callable[..., Blaze], loop: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        fd = listener.fileno()
        b = spawn(f"{APPS}:app", "--fd", str(fd), "--loop", loop, pass_fds=[fd])
        b.wait_for(f"Serving on http://127.0.0.1:{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/via/fd", timeout=5).json()["path"] == "/via/fd"
        assert b.stop() == 0


def test_fd_that_is_not_a_usable_socket() -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ListenError, match="--fd 1: not an open socket"):
            adopt_socket(read_end, "--fd 1")
    finally:
        os.close(read_end)
        os.close(write_end)
    with socket.socket() as unbound, pytest.raises(ListenError, match="not bound"):
        adopt_socket(unbound.fileno(), "--fd")
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        with pytest.raises(ListenError, match="not a stream socket"):
            adopt_socket(udp.fileno(), "--fd")
        assert udp.fileno() >= 0  # not closed by the failed adoption


def test_fd_flag_error_is_one_line() -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)  # r is now a closed descriptor
    assert_one_line_error(run_cli(f"{APPS}:app", "--fd", str(r)), f"--fd {r}", "not an open socket")


def test_systemd_fds_only_for_this_process() -> None:
    me = str(os.getpid())
    assert systemd_fds({}) == []
    assert systemd_fds({"LISTEN_PID": "1", "LISTEN_FDS": "2"}) == []  # meant for another process
    assert systemd_fds({"LISTEN_PID": me, "LISTEN_FDS": "2"}) == [3, 4]
    with pytest.raises(ListenError, match="LISTEN_FDS"):
        systemd_fds({"LISTEN_PID": me, "LISTEN_FDS": "two"})


# sd_listen_fds(3) wants the sockets at 3, 4, ... and LISTEN_PID equal to the
# server's pid: this wrapper moves them there, sets the variables and execs
# blazeasgi (exec keeps the pid), as systemd does.
SYSTEMD_WRAPPER = """
import fcntl, os, sys
fds = [int(n) for n in sys.argv[1].split(",")]
moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
for fd in fds:
    os.close(fd)
for i, fd in enumerate(moved):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_FDS"] = str(len(fds))
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, "-m", "blazeasgi", *sys.argv[2:]])
"""


def test_systemd_socket_activation(spawn: Callable[..., Blaze], short_tmp: Path) -> None:
    path = str(short_tmp / "activated.sock")
    with socket.socket() as tcp, socket.socket(socket.AF_UNIX) as unix:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        unix.bind(path)
        unix.listen()
        port = tcp.getsockname()[1]
        fds = [tcp.fileno(), unix.fileno()]
        b = spawn(",".join(map(str, fds)), f"{APPS}:app", wrapper=["-c", SYSTEMD_WRAPPER], pass_fds=fds)
        b.wait_for(f"Serving on http://127.0.0.1:{port}")
        b.wait_for(f"Serving on unix:{path}")
        assert not any("127.0.0.1:8000" in line for line in b.log)  # not --host/--port too
        assert httpx.get(f"http://127.0.0.1:{port}/tcp", timeout=5).json()["path"] == "/tcp"
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=5) as client:
            assert client.get("http://localhost/unix").json()["path"] == "/unix"
        assert b.stop() == 0


# -- TCP: IPv6, host names, bad values -------------------------------------------------------
@needs_ipv6
def test_ipv6_loopback(spawn: Callable[..., Blaze]) -> None:
    b = spawn(f"{APPS}:app", "--host", "::1", "--port", "0")
    port = served_port(b, "http://[::1]")
    assert httpx.get(f"http://[::1]:{port}/six", timeout=5).json()["path"] == "/six"
    assert b.stop() == 0


@needs_ipv6
def test_ipv6_any_is_dual_stack() -> None:
    (sock,) = open_sockets("::", 0)
    with sock:
        assert sock.family == socket.AF_INET6
        port = sock.getsockname()[1]
        for host in ("127.0.0.1", "::1"):  # the backlog completes the connection
            socket.create_connection((host, port), timeout=5).close()


def test_host_name_is_resolved() -> None:
    sockets = open_sockets("localhost", 0)
    try:
        names = [s.getsockname() for s in sockets]
        assert {n[0] for n in names} <= {"127.0.0.1", "::1"}
        assert "127.0.0.1" in {n[0] for n in names}
        assert len({n[1] for n in names}) == 1  # one port for every address
        for s in sockets:
            host = s.getsockname()[0]
            socket.create_connection((host, s.getsockname()[1]), timeout=5).close()
    finally:
        for s in sockets:
            s.close()


def test_bracketed_ipv6_and_describe() -> None:
    if not has_ipv6_loopback():
        pytest.skip("this host has no IPv6 loopback")
    (sock,) = open_sockets("[::1]", 0)
    with sock:
        assert describe(sock, "https") == f"https://[::1]:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--port", "70000"], ["--port 70000"]),
        (["--host", "no-such-host.invalid"], ["--host 'no-such-host.invalid'", "cannot resolve"]),
    ],
)
def test_bad_host_or_port_is_one_line(flags: list[str], words: list[str]) -> None:
    assert_one_line_error(run_cli(f"{APPS}:app", *flags), *words)
