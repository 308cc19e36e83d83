"""Scale-out behind nginx (deploy/): a rolling restart under load loses no request.

The restart relies on how one instance stops, checked directly here too: on
SIGTERM it closes its listening socket (new connects are refused, so a balancer
moves on), closes idle keep-alive connections, lets an in-flight request finish
with ``Connection: close``, then exits 0.

Instances are ``python -m blazeasgi`` subprocesses of a small native app written
to the test's directory; every subprocess is killed at the end whatever happens.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.rolling_restart import (
    NGINX_CONF,
    Cluster,
    DeployError,
    Instance,
    find_nginx,
    free_port,
    http_get,
    make_load,
    parse_log_line,
    render_nginx_conf,
)

ROOT = Path(__file__).resolve().parents[2]
LOOPS = ["asyncio", "uvloop"]

APP = '''\
"""An instance behind the balancer: says which one answered (see deploy/rolling_restart.py)."""

import asyncio
import os
from pathlib import Path

from blazeasgi import App, Request, Response

INSTANCE = os.environ.get("BLAZE_INSTANCE", "?")
HERE = Path(__file__).resolve().parent
app = App()


@app.get("/")
def index(request: Request) -> Response:
    return Response(INSTANCE.encode(), media_type="text/plain")


@app.get("/seen")
def seen(request: Request) -> dict:
    """What nginx sent: the forwarded headers and the upstream connection's port."""
    names = ("host", "connection", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
    facts = {name: request.headers.get(name) for name in names}
    facts["peer_port"] = request.exchange.conn.transport.get_extra_info("peername")[1]
    facts["instance"] = INSTANCE
    return facts


@app.get("/slow")
async def slow(request: Request) -> Response:
    """In flight until the test creates the file "release"."""
    (HERE / "started").touch()
    while not (HERE / "release").exists():
        await asyncio.sleep(0.02)
    return Response(b"slow done " + INSTANCE.encode(), media_type="text/plain")
'''

needs_nginx = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed: apt-get install nginx")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "deploy_app.py").write_text(APP)
    return directory


@pytest.fixture
def cluster(request: pytest.FixtureRequest, app_dir: Path, tmp_path: Path) -> Iterator[Cluster]:
    loop = getattr(request, "param", "auto")
    with Cluster("deploy_app:app", tmp_path / "run", 2, app_dir=str(app_dir), loop=loop, cwd=ROOT) as running:
        yield running


# -- the rolling restart ---------------------------------------------------------------------


@needs_nginx
@pytest.mark.parametrize("cluster", LOOPS, indirect=True)
def test_rolling_restart_under_load_loses_no_request(cluster: Cluster) -> None:
    report = cluster.rolling_restart(make_load("auto", cluster, connections=8))
    print("\n".join(report.lines()))  # the figures, shown with pytest -s

    assert report.failed == 0, report.lines()
    assert report.proxy_errors == 0, report.lines()
    assert report.sent >= 100, report.lines()  # the load really ran throughout
    assert [(s.instance, s.exit_code) for s in report.steps] == [("a", 0), ("b", 0)]
    assert all(instance.starts == 2 for instance in cluster.instances)
    # Both restarted processes take traffic: nginx alternates between them.
    answers = {http_get(cluster.nginx.port, "/")[1] for _ in range(4)}
    assert answers == {b"a", b"b"}
    assert report.served["a"] > 0 and report.served["b"] > 0


@needs_nginx
def test_nginx_forwards_client_facts_over_kept_alive_connections(cluster: Cluster) -> None:
    port = cluster.nginx.port
    seen = []
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                f"GET /seen HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Forwarded-For: 203.0.113.7\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            status, _, body = read_response(sock)
            assert status == 200
            seen.append(json.loads(body))
    first = seen[0]
    assert first["host"] == "127.0.0.1"  # $host: without the port
    assert first["x-forwarded-host"] == "127.0.0.1"
    assert first["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"  # the client's list, plus the peer
    assert first["x-forwarded-proto"] == "http"
    # No "Connection: close" upstream, even though the client asked for it: nginx
    # keeps its connections to the instances and reuses them.
    assert all(s["connection"] is None for s in seen)
    by_instance: dict[str, set[int]] = {}
    for s in seen:
        by_instance.setdefault(s["instance"], set()).add(s["peer_port"])
    assert sorted(by_instance) == ["a", "b"]
    assert all(len(ports) == 1 for ports in by_instance.values()), by_instance


@needs_nginx
def test_nginx_retries_on_the_other_instance_while_one_is_down(cluster: Cluster) -> None:
    a, b = cluster.instances
    assert a.stop() == 0
    mark = cluster.nginx.log_size()
    # Without proxy_next_upstream each request routed to the stopped instance
    # would be a 502; with it nginx moves on to b.
    answers = [http_get(cluster.nginx.port, "/") for _ in range(6)]
    assert answers == [(200, b"b")] * 6
    entries, _ = cluster.nginx.entries(mark)
    # The request nginx first sent to a, answered by b: a retry the client never saw.
    assert any(a.address in entry.upstreams and entry.upstreams[-1] == b.address for entry in entries)


# -- one instance draining -------------------------------------------------------------------


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def wait_refused(port: int, timeout: float = 10.0) -> None:
    """Until a connect is refused. Connects accepted before the server handles
    the signal are allowed meanwhile; the drain closes them as idle."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        except ConnectionRefusedError:
            return
        sock.close()
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        time.sleep(0.02)


@pytest.fixture
def instance(request: pytest.FixtureRequest, app_dir: Path, tmp_path: Path) -> Iterator[Instance]:
    running = Instance(
        "a", "deploy_app:app", free_port(), tmp_path, app_dir=str(app_dir), loop=request.param, cwd=ROOT
    )
    running.start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.kill()


@pytest.mark.parametrize("instance", LOOPS, indirect=True)
def test_sigterm_finishes_in_flight_request_and_refuses_new_connections(
    instance: Instance, app_dir: Path
) -> None:
    assert instance.proc is not None
    with (
        socket.create_connection(("127.0.0.1", instance.port), timeout=5) as idle,
        socket.create_connection(("127.0.0.1", instance.port), timeout=5) as busy,
    ):
        idle.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, _ = read_response(idle)
        assert status == 200 and "connection" not in headers  # kept alive, now idle
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for(app_dir / "started")

        instance.proc.send_signal(signal.SIGTERM)

        assert idle.recv(1) == b""  # the idle keep-alive connection is closed
        wait_refused(instance.port)  # the listening socket is closed
        assert instance.proc.poll() is None  # still waiting for the in-flight request

        (app_dir / "release").touch()
        status, headers, body = read_response(busy)
        assert (status, body) == (200, b"slow done a")
        assert headers["connection"] == "close"
        assert busy.recv(1) == b""
    assert instance.proc.wait(15) == 0


# -- the harness's own parts -----------------------------------------------------------------


def test_nginx_conf_renders_with_the_run_ports() -> None:
    conf = render_nginx_conf(NGINX_CONF.read_text(), 9000, ["127.0.0.1:9001", "127.0.0.1:9002"], 1)
    assert "listen 127.0.0.1:9000;" in conf
    assert "server 127.0.0.1:9001 max_fails=1 fail_timeout=2s;" in conf
    assert "server 127.0.0.1:9002 max_fails=1 fail_timeout=2s;" in conf
    assert "8001" not in conf and "8002" not in conf
    assert "worker_processes 1;" in conf
    with pytest.raises(DeployError, match="no listen"):
        render_nginx_conf("worker_processes 1;\nserver 127.0.0.1:1;\n", 9000, ["127.0.0.1:9001"], 1)


def test_access_log_line_parsing() -> None:
    line = (
        '127.0.0.1 [26/Nov/2026:23:00:00 +0000] "GET / HTTP/1.1" 200 1 rt=0.001 '
        'ua="127.0.0.1:9002, 127.0.0.1:9001" us="502, 200" urt="0.000, 0.001"'
    )
    entry = parse_log_line(line)
    assert entry is not None
    assert entry.status == 200
    assert entry.upstreams == ("127.0.0.1:9002", "127.0.0.1:9001")
    assert entry.upstream_statuses == ("502", "200")
    assert parse_log_line("not an access log line") is None


def test_script_rejects_a_single_instance_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from deploy.rolling_restart import main

    with pytest.raises(SystemExit) as exc:
        main(["deploy_app:app", "--instances", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--instances must be at least 2" in err
    assert "Traceback" not in err
