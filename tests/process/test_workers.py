"""--workers, the master process and its signals, --limit-max-requests.

Every test runs ``python -m blazeasgi`` in a subprocess and talks to it over real
sockets, one fresh connection per request (``get``): a refused or reset
connection during a rotation or reload fails the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter

import pytest

from ..helpers.cli import assert_one_line_error, free_port
from ..helpers.workers import PID_APP, TIMEOUT, Clients, Master, alive, get, run_cli


def start_tcp(master, *args: str, **kwargs: object) -> tuple[Master, int]:
    port = free_port()
    m = master(PID_APP, "--port", str(port), "--no-access-log", *args, **kwargs)
    m.wait_for_match(f"Serving on http://127.0.0.1:{port}")
    return m, port


def answering(port: int | str, wanted: set[int], limit: int = 2000) -> Counter[int]:
    """Send requests until every pid in ``wanted`` answered (or ``limit`` were sent)."""
    seen: Counter[int] = Counter()
    for _ in range(limit):
        seen[int(get(port))] += 1
        if wanted <= set(seen):
            break
    return seen


# -- workers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_workers_answer_from_distinct_processes(master, loop: str) -> None:
    m, port = start_tcp(master, "--workers", "2", "--loop", loop)
    pids = m.workers(2)
    assert len(set(pids)) == 2 and m.proc.pid not in pids
    clients = Clients(port)
    try:
        clients.wait_for_pids(set(pids))
    finally:
        clients.stop()
    assert not clients.failures
    assert set(clients.pids) == set(pids)
    assert m.stop() == 0
    assert not [pid for pid in pids if alive(pid)]
    assert "Traceback" not in "\n".join(m.log)


def test_web_concurrency_sets_the_default(master, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    m, port = start_tcp(master)
    pids = m.workers(3)
    assert set(answering(port, set(pids))) == set(pids)
    assert m.stop() == 0


def test_workers_flag_overrides_web_concurrency(master, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    m, _ = start_tcp(master, "--workers", "2")
    assert len(m.workers(2)) == 2
    assert m.stop() == 0


def test_workers_on_unix_socket(master) -> None:
    tmp = tempfile.mkdtemp(prefix="blz", dir="/tmp")  # short: AF_UNIX paths are limited
    try:
        path = os.path.join(tmp, "s.sock")
        m = master(PID_APP, "--uds", path, "--workers", "2", "--no-access-log")
        m.wait_for_match(f"Serving on unix:{path}")
        pids = m.workers(2)
        assert set(answering(path, set(pids))) == set(pids)
        assert m.stop() == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_workers_on_inherited_fd(master) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        fd = sock.fileno()
        m = master(PID_APP, "--fd", str(fd), "--workers", "2", "--no-access-log", pass_fds=(fd,))
        pids = m.workers(2)
    assert set(answering(port, set(pids))) == set(pids)
    assert m.stop() == 0


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_one_shared_socket_with_no_reuse_port(master, loop: str) -> None:
    m, port = start_tcp(master, "--workers", "2", "--no-reuse-port", "--loop", loop)
    pids = m.workers(2)
    clients = Clients(port)
    try:
        clients.wait_for_pids(set(pids))
    finally:
        clients.stop()
    assert not clients.failures
    assert m.stop() == 0


def listening_sockets(port: int) -> int:
    """How many distinct sockets listen on 127.0.0.1:``port`` (Linux's /proc)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return len(inodes)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads load on Linux only")
@pytest.mark.parametrize(("flags", "sockets"), [([], 3), (["--no-reuse-port"], 1)])
def test_reuse_port_is_the_default_on_linux(master, flags: list[str], sockets: int) -> None:
    m, port = start_tcp(master, "--workers", "3", *flags)
    pids = m.workers(3)
    assert listening_sockets(port) == sockets
    assert set(answering(port, set(pids))) == set(pids)
    assert m.stop() == 0


# -- supervision --------------------------------------------------------------------------------
def test_killed_worker_is_replaced(master) -> None:
    m, port = start_tcp(master, "--workers", "2")
    victim, survivor = m.workers(2)
    os.kill(victim, signal.SIGKILL)
    m.wait_for_match(rf"Worker \[{victim}\] died \(signal SIGKILL\); starting a replacement")
    replacement = int(m.wait_for_match(r"Worker \[(\d+)\] ready").group(1))
    seen = answering(port, {survivor, replacement})
    assert set(seen) == {survivor, replacement}
    assert m.stop() == 0


def test_master_gone_stops_workers(master) -> None:
    m, port = start_tcp(master, "--workers", "2")
    pids = m.workers(2)
    m.proc.kill()
    deadline = time.monotonic() + TIMEOUT
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)]
    with pytest.raises(OSError):
        get(port)


@pytest.mark.parametrize("workers", [1, 2])
def test_max_requests_rotates_workers_without_failures(master, workers: int) -> None:
    m, port = start_tcp(
        master, "--workers", str(workers), "--limit-max-requests", "20", "--limit-max-requests-jitter", "5"
    )
    first = set(m.workers(workers))
    clients = Clients(port)
    try:
        clients.wait_for_pids(workers + 3)  # at least three replacements served
    finally:
        clients.stop()
    assert not clients.failures, clients.failures[:3]
    assert first < set(clients.pids)
    m.wait_for_match(r"Worker \[\d+\] reached its request limit; replacing it")
    assert m.stop() == 0


def test_sigterm_lets_in_flight_requests_finish(master) -> None:
    m, port = start_tcp(master, "--workers", "2")
    m.workers(2)
    result: list[str | BaseException] = []

    def slow() -> None:
        try:
            result.append(get(port, "/slow"))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    busy = int(m.wait_for_match(r"slow request started in (\d+)").group(1))
    assert m.stop(signal.SIGTERM) == 0
    thread.join(TIMEOUT)
    assert result == [str(busy)]
    assert not alive(busy)
    assert any("Stopped" in line for line in m.log)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sighup_replaces_every_worker_without_failures(master, loop: str) -> None:
    m, port = start_tcp(master, "--workers", "2", "--loop", loop)
    old = set(m.workers(2))
    clients = Clients(port)
    try:
        clients.wait_for_pids(old)
        m.proc.send_signal(signal.SIGHUP)
        events: dict[str, set[int]] = {"ready": set(), "stopped": set()}
        while len(events["ready"]) < 2 or len(events["stopped"]) < 2:
            match = m.wait_for_match(r"Worker \[(\d+)\] (ready|stopped)")
            events[match.group(2)].add(int(match.group(1)))
        new = events["ready"]
        assert events["stopped"] == old
        clients.wait_for_pids(new)
    finally:
        clients.stop()
    assert not clients.failures, clients.failures[:3]
    assert not new & old
    assert not [pid for pid in old if alive(pid)]
    assert m.stop() == 0


def test_sigttin_and_sigttou_resize(master) -> None:
    m, port = start_tcp(master, "--workers", "2")
    first = set(m.workers(2))
    m.proc.send_signal(signal.SIGTTIN)
    m.wait_for_match("Now 3 workers")
    added = int(m.wait_for_match(r"Worker \[(\d+)\] ready").group(1))
    assert set(answering(port, {*first, added})) == {*first, added}
    m.proc.send_signal(signal.SIGTTOU)
    assert int(m.wait_for_match(r"Worker \[(\d+)\] stopped").group(1)) == added
    assert m.stop() == 0


# -- errors: one line, exit code 1, no restart loop ----------------------------------------


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("tests.apps.broken_import:app", ["tests.apps.broken_import", "blazeasgi_no_such_dependency"]),
        ("tests.apps.cli_apps:failing_startup", ["startup failed", "db unreachable"]),
        ("tests.apps.no_such_module:app", ['Could not import module "tests.apps.no_such_module"']),
    ],
)
def test_workers_that_cannot_start_stop_the_master(target: str, words: list[str]) -> None:
    out = run_cli(target, "--workers", "2", "--port", str(free_port()))
    assert_one_line_error(out, *words)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--workers", "0"], ["--workers must be at least 1"]),
        (["--limit-max-requests", "-1"], ["--limit-max-requests"]),
        (["--workers", "2", "--reuse-port", "--uds", "/tmp/blz-never.sock"], ["--reuse-port", "--uds"]),
    ],
)
def test_bad_process_flags(args: list[str], words: list[str]) -> None:
    assert_one_line_error(run_cli(PID_APP, *args), *words)


def test_port_in_use_with_workers() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        out = run_cli(PID_APP, "--workers", "2", "--port", str(taken.getsockname()[1]))
    assert_one_line_error(out)
