"""HTTPS: trustme certificates, real TLS connections, both loops, both interfaces.

In-process servers (the ``serve`` fixture with the Config's ssl_* fields) for
what the app sees; ``python -m blazeasgi`` subprocesses for what the operator
sees: one-line errors, quiet logs, no leaked descriptors.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from websockets.sync.client import connect as ws_connect

from blazeasgi.config import Config
from blazeasgi.tls import load_tls

from ..apps import tls_apps
from ..conftest import RunningServer
from ..helpers.cli import Blaze, assert_one_line_error, run_cli
from ..helpers.tls import PASSWORD, Certs, client_context, tls_server

APPS = "tests.apps.tls_apps"
APP_KINDS = {"asgi": tls_apps.asgi_app, "native": tls_apps.native_app}
TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def connect(server: RunningServer, ctx: ssl.SSLContext) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=5)


def fetch(conn: http.client.HTTPSConnection, path: str = "/") -> dict[str, Any]:
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    result: dict[str, Any] = json.loads(response.read())
    return result


def tls_sock(conn: http.client.HTTPSConnection) -> ssl.SSLSocket:
    sock = conn.sock
    assert isinstance(sock, ssl.SSLSocket)
    return sock


def suite_id(ctx: ssl.SSLContext, sock: ssl.SSLSocket) -> int:
    cipher = sock.cipher()
    assert cipher is not None
    return {c["name"]: c["id"] & 0xFFFF for c in ctx.get_ciphers()}[cipher[0]]


def der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


# -- what the app sees ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", APP_KINDS)
def test_https_scheme_and_tls_extension(serve: Callable[..., RunningServer], certs: Certs, kind: str) -> None:
    server = tls_server(serve, certs, APP_KINDS[kind])
    ctx = client_context(certs)
    conn = connect(server, ctx)
    first, second = fetch(conn), fetch(conn)  # two requests on one connection
    sock = tls_sock(conn)
    assert first["scheme"] == "https"
    tls = first["tls"]
    assert der(tls.pop("server_cert")) == der(certs.server_pem)
    assert tls == {
        "client_cert_chain": [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS[str(sock.version())],
        "cipher_suite": suite_id(ctx, sock),
    }
    # Computed once per connection: the same dict serves both requests, and
    # another connection (open at the same time) has its own.
    assert second["tls_id"] == first["tls_id"]
    other = connect(server, ctx)
    assert fetch(other)["tls_id"] != first["tls_id"]
    conn.close()
    other.close()


def test_websocket_scope_is_wss_with_tls(serve: Callable[..., RunningServer], certs: Certs) -> None:
    server = tls_server(serve, certs, tls_apps.asgi_app)
    with ws_connect(f"wss://127.0.0.1:{server.port}/ws", ssl=client_context(certs), open_timeout=5) as ws:
        scope = json.loads(ws.recv(timeout=5))
    assert scope["scheme"] == "wss"
    assert der(scope["tls"]["server_cert"]) == der(certs.server_pem)


def test_native_websocket_has_tls_and_a_wss_url(serve: Callable[..., RunningServer], certs: Certs) -> None:
    server = tls_server(serve, certs, tls_apps.native_app)
    url = f"wss://127.0.0.1:{server.port}/ws"
    with ws_connect(url, ssl=client_context(certs), open_timeout=15) as ws:  # a busy host
        seen = json.loads(ws.recv(timeout=5))
    assert seen["scheme"] == "wss"
    assert seen["url"] == f"wss://127.0.0.1:{server.port}/ws"
    assert seen["tls"]["tls_version"] is not None and der(seen["tls"]["server_cert"]) == der(certs.server_pem)


def test_plain_http_has_no_tls_extension(serve: Callable[..., RunningServer]) -> None:
    server = serve(tls_apps.asgi_app)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    body = json.loads(conn.getresponse().read())
    conn.close()
    assert body["scheme"] == "http"
    assert body["tls"] is None


def test_alpn_without_http2_negotiates_http11_only(serve: Callable[..., RunningServer], certs: Certs) -> None:
    server = tls_server(serve, certs, tls_apps.asgi_app, http2=False)
    ctx = client_context(certs)
    ctx.set_alpn_protocols(["h2", "http/1.1"])  # h2 preferred: the server must not pick it
    conn = connect(server, ctx)
    assert fetch(conn)["scheme"] == "https"
    assert tls_sock(conn).selected_alpn_protocol() == "http/1.1"
    conn.close()


@pytest.mark.parametrize("key", ["plain", "encrypted", "in_certfile"])
def test_key_forms(serve: Callable[..., RunningServer], certs: Certs, key: str) -> None:
    if key == "plain":
        server = tls_server(serve, certs, tls_apps.native_app)
    elif key == "encrypted":
        server = tls_server(
            serve, certs, tls_apps.native_app, ssl_keyfile=certs.encrypted_key, ssl_keyfile_password=PASSWORD
        )
    else:
        server = serve(tls_apps.native_app, ssl_certfile=certs.combined)
    conn = connect(server, client_context(certs))
    assert fetch(conn)["scheme"] == "https"
    conn.close()


@pytest.mark.parametrize("kind", APP_KINDS)
def test_client_certificate_required(serve: Callable[..., RunningServer], certs: Certs, kind: str) -> None:
    server = tls_server(serve, certs, APP_KINDS[kind], ssl_cert_reqs=2, ssl_ca_certs=certs.ca_file)
    # Without a certificate the handshake fails (TLS 1.3 reports it at the
    # first read): no HTTP response.
    anonymous = connect(server, client_context(certs))
    with pytest.raises((ssl.SSLError, OSError, http.client.HTTPException)):
        fetch(anonymous)
    anonymous.close()
    conn = connect(server, client_context(certs, with_cert=True))
    tls = fetch(conn)["tls"]
    conn.close()
    client_pem = certs.client.cert_chain_pems[0].bytes()
    assert [der(pem) for pem in tls["client_cert_chain"]][:1] == [der(client_pem.decode())]
    expected_name = x509.load_pem_x509_certificate(client_pem).subject.rfc4514_string()
    assert tls["client_cert_name"] == expected_name
    assert tls["client_cert_name"].startswith("CN=alice\\, admin,")
    assert tls["client_cert_error"] is None


def test_client_certificate_optional(serve: Callable[..., RunningServer], certs: Certs) -> None:
    server = tls_server(serve, certs, tls_apps.asgi_app, ssl_cert_reqs=1, ssl_ca_certs=certs.ca_file)
    anonymous = connect(server, client_context(certs))
    assert fetch(anonymous)["tls"]["client_cert_chain"] == []
    anonymous.close()
    conn = connect(server, client_context(certs, with_cert=True))
    assert len(fetch(conn)["tls"]["client_cert_chain"]) >= 1
    conn.close()


def tls12_context(certs: Certs, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = client_context(certs)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def test_tls12_client_with_uvicorns_default_ciphers(
    serve: Callable[..., RunningServer], certs: Certs
) -> None:
    """'TLSv1' leaves TLS 1.2 with the SHA-1 CBC suites only, as under uvicorn."""
    server = tls_server(serve, certs, tls_apps.asgi_app, ssl_ciphers="TLSv1")
    ctx = tls12_context(certs, "ECDHE+AES")
    conn = connect(server, ctx)
    tls = fetch(conn)["tls"]
    sock = tls_sock(conn)
    assert tls["tls_version"] == 0x0303
    assert tls["cipher_suite"] == suite_id(ctx, sock)
    cipher = sock.cipher()
    assert cipher is not None and cipher[0].endswith("-SHA")
    conn.close()
    # A TLS 1.2 client with Python's default policy (no SHA-1 suites) finds no
    # common cipher: why blazeasgi's default is Python's list instead.
    strict = connect(server, tls12_context(certs))
    with pytest.raises(ssl.SSLError):
        fetch(strict)
    strict.close()


def test_default_ciphers_are_pythons(serve: Callable[..., RunningServer], certs: Certs) -> None:
    server = tls_server(serve, certs, tls_apps.asgi_app)
    conn = connect(server, tls12_context(certs))
    assert fetch(conn)["tls"]["tls_version"] == 0x0303
    cipher = tls_sock(conn).cipher()
    assert cipher is not None and ("GCM" in cipher[0] or "CHACHA20" in cipher[0])
    conn.close()


def test_pinned_tls_version(serve: Callable[..., RunningServer], certs: Certs) -> None:
    server = tls_server(serve, certs, tls_apps.asgi_app, ssl_version=5, ssl_ciphers="")  # PROTOCOL_TLSv1_2
    conn = connect(server, client_context(certs))  # would pick TLS 1.3 if it could
    assert fetch(conn)["tls"]["tls_version"] == 0x0303
    conn.close()


# -- what the network sees -------------------------------------------------------------------
def read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_plain_http_to_tls_port_is_closed(serve: Callable[..., RunningServer], certs: Certs) -> None:
    server = tls_server(serve, certs, tls_apps.asgi_app)
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b"HTTP/" not in read_all(sock)  # closed (after a TLS alert at most)
    conn = connect(server, client_context(certs))  # and still serving
    assert fetch(conn)["scheme"] == "https"
    conn.close()


def test_handshake_must_finish_within_head_timeout(serve: Callable[..., RunningServer], certs: Certs) -> None:
    server = tls_server(serve, certs, tls_apps.asgi_app, head_timeout=0.3)
    with server.connect(timeout=10) as sock:  # sends nothing: the loops' default waits 60 s
        assert read_all(sock) == b""


def test_load_tls_without_certificate_is_plain() -> None:
    assert load_tls(Config()) is None


# -- the operator's view: python -m blazeasgi ------------------------------------------------
def serve_tls(blaze: Callable[..., Blaze], certs: Certs, loop: str) -> tuple[Blaze, int]:
    """The ASGI test app over TLS on a free port: the process and its port."""
    b = blaze(
        f"{APPS}:asgi_app",
        "--port", "0", "--loop", loop, "--no-access-log",
        "--ssl-certfile", certs.cert, "--ssl-keyfile", certs.key,
    )  # fmt: skip
    match = re.search(r"https://127\.0\.0\.1:(\d+)", b.wait_for("Serving on https://127.0.0.1:"))
    assert match is not None
    return b, int(match.group(1))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_bad_clients_leave_no_trace(blaze: Callable[..., Blaze], certs: Certs, loop: str) -> None:
    """Plain HTTP, garbage and rejected handshakes: no traceback, no leaked descriptor."""
    b, port = serve_tls(blaze, certs, loop)
    ctx = client_context(certs)

    def good_request() -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
        assert fetch(conn)["scheme"] == "https"
        conn.close()

    good_request()
    baseline = open_fds(b.proc.pid)
    untrusting = ssl.create_default_context()  # does not trust the test CA: aborts the handshake
    for i in range(30):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            if i % 3 == 0:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                read_all(sock)
            elif i % 3 == 1:
                sock.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello
                read_all(sock)
            else:
                with pytest.raises(ssl.SSLCertVerificationError):
                    untrusting.wrap_socket(sock, server_hostname="localhost")
    good_request()
    # Every bad connection's descriptor is closed (the loop closes them
    # asynchronously: wait for it rather than assume).
    for _ in range(100):
        if open_fds(b.proc.pid) <= baseline:
            break
        good_request()
    assert open_fds(b.proc.pid) <= baseline
    assert b.stop() == 0
    stderr = "\n".join(b.log)
    assert "Traceback" not in stderr
    assert not [line for line in b.log if "ERROR" in line or "WARNING" in line], stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sigterm_with_idle_tls_client(blaze: Callable[..., Blaze], certs: Certs, loop: str) -> None:
    """An idle keep-alive client that never answers close_notify (http.client
    does not read an idle socket) held shutdown for the loops' 30 s default."""
    b, port = serve_tls(blaze, certs, loop)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(certs))
    fetch(conn)  # then idle, unread
    b.proc.send_signal(signal.SIGTERM)
    try:
        assert b.proc.wait(20) == 0  # tls.SHUTDOWN_TIMEOUT (5 s), not 30 s
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--ssl-keyfile", "{encrypted_key}", "--ssl-keyfile-password", "wrong"], ["does not decrypt"]),
        (["--ssl-keyfile", "{encrypted_key}"], ["is encrypted", "--ssl-keyfile-password"]),
        (["--ssl-keyfile", "{other_key}"], ["could not use certificate", "KEY_VALUES_MISMATCH"]),
        (["--ssl-keyfile", "/nonexistent/key.pem"], ["--ssl-keyfile", "No such file"]),
        ([], ["holds no private key", "--ssl-keyfile"]),
        (["--ssl-keyfile", "{key}", "--ssl-cert-reqs", "2"], ["--ssl-ca-certs"]),
        (["--ssl-keyfile", "{key}", "--ssl-ciphers", "NO-SUCH-CIPHER"], ["--ssl-ciphers"]),
        (["--ssl-keyfile", "{key}", "--ssl-version", "9"], ["--ssl-version 9"]),
    ],
)
def test_tls_flag_errors(certs: Certs, flags: list[str], words: list[str]) -> None:
    values = {"key": certs.key, "encrypted_key": certs.encrypted_key, "other_key": certs.other_key}
    args = [flag.format(**values) for flag in flags]
    out = run_cli(f"{APPS}:asgi_app", "--port", "0", "--ssl-certfile", certs.cert, *args)
    assert_one_line_error(out, *words)


def test_missing_certfile_and_keyfile_alone(certs: Certs) -> None:
    out = run_cli(f"{APPS}:asgi_app", "--ssl-certfile", "/nonexistent/cert.pem", "--ssl-keyfile", certs.key)
    assert_one_line_error(out, "--ssl-certfile /nonexistent/cert.pem", "No such file")
    assert_one_line_error(run_cli(f"{APPS}:asgi_app", "--ssl-keyfile", certs.key), "needs --ssl-certfile")
