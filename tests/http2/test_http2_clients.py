"""HTTP/2 with the clients people use: nghttp, h2load, curl and Chromium.

tests/http2/test_http2.py drives the engine with httpx and the h2 library; here the peers
are nghttp2's own client and load generator, curl (libcurl over nghttp2) and a
headless Chromium, each over h2c with prior knowledge and over TLS (ALPN "h2"), with
the native and the ASGI apps of tests/apps/h2_apps.py. Each test skips, saying what
to install, only when its tool is absent (the Debian packages nghttp2-client, curl,
chromium and chromium-driver; .ci/run installs them).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.h2load import parse_h2load_output
from blazeasgi.engine import http2

from ..apps import h2_apps
from ..conftest import RunningServer
from ..helpers.browser import MISSING as BROWSER_MISSING
from ..helpers.tls import Certs, tls_server

Serve = Callable[..., RunningServer]

NGHTTP = shutil.which("nghttp")
H2LOAD = shutil.which("h2load")
CURL = shutil.which("curl")

pytestmark = [
    pytest.mark.skipif(not http2.AVAILABLE, reason="zttp (the HTTP/2 codec) is not installed"),
    pytest.mark.usefixtures("collect_garbage"),
]
needs_nghttp = pytest.mark.skipif(
    NGHTTP is None, reason="nghttp is not installed (apt-get install nghttp2-client)"
)
needs_h2load = pytest.mark.skipif(
    H2LOAD is None, reason="h2load is not installed (apt-get install nghttp2-client)"
)


def _curl_speaks_http2() -> bool:
    if CURL is None:
        return False
    out = subprocess.run([CURL, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return "HTTP2" in out.stdout.split("Features:", 1)[-1]


needs_curl = pytest.mark.skipif(
    not _curl_speaks_http2(), reason="curl with HTTP/2 is not installed (apt-get install curl)"
)


def run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """A client run to its end; its exit status must be 0 (stderr shown otherwise)."""
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def https(server: RunningServer, path: str = "/") -> str:
    return f"https://localhost:{server.port}{path}"


def start(serve: Serve, certs: Certs, app: Any, tls: bool) -> str:
    """Serve ``app`` on h2c, or over TLS (ALPN h2 or http/1.1): the base URL."""
    return https(tls_server(serve, certs, app)) if tls else serve(app).url()


# -- nghttp ------------------------------------------------------------------------------------
def nghttp_streams(stats: str) -> list[dict[str, Any]]:
    """The rows of ``nghttp -s``'s table, in the order the streams completed."""
    rows = []
    table = stats.split("request path\n", 1)[1]
    for line in table.splitlines():
        fields = line.split()
        if len(fields) == 7:  # id responseEnd requestStart process code size path
            rows.append(
                {"id": int(fields[0]), "code": int(fields[4]), "size": int(fields[5]), "path": fields[6]}
            )
    return rows


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object of ``text``, where nghttp wrote the bodies one after the other."""
    decoder, found, at = json.JSONDecoder(), [], text.find("{")
    while at >= 0:
        value, end = decoder.raw_decode(text, at)
        found.append(value)
        at = text.find("{", end)
    return found


@needs_nghttp
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_nghttp_concurrent_streams_asgi(serve: Serve, certs: Certs, tls: bool) -> None:
    """Five streams on one connection: the slow one, asked first, ends last, while the
    four quick ones are answered around it, each with its own request's query."""
    base = start(serve, certs, h2_apps.asgi_app, tls)
    urls = [f"{base}slow?s=0.5", *(f"{base}?n={i}" for i in range(1, 5))]
    # nghttp speaks only HTTP/2: over TLS it stops unless ALPN selects "h2".
    out = run([str(NGHTTP), "-s", *urls]).stdout.decode()
    bodies, stats = out.rsplit("***** Statistics *****", 1)
    streams = nghttp_streams(stats)
    assert [s["code"] for s in streams] == [200] * 5
    assert len({s["id"] for s in streams}) == 5
    assert streams[-1]["path"] == "/slow?s=0.5"  # asked first, answered last
    assert streams[-1]["id"] == min(s["id"] for s in streams)
    assert "done" in bodies
    answers = json_objects(bodies)
    assert sorted(a["query_string"] for a in answers) == [f"n={i}" for i in range(1, 5)]
    assert {(a["http_version"], a["scheme"], a["tls"]) for a in answers} == {
        ("2", "https" if tls else "http", tls)
    }


@needs_nghttp
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_nghttp_native_upload_and_repeated_streams(
    serve: Serve, certs: Certs, tls: bool, tmp_path: Path
) -> None:
    """A POST body past the initial 64 KiB window, then the same GET on six streams."""
    base = start(serve, certs, h2_apps.native_app, tls)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"u" * 300_000)
    assert run([str(NGHTTP), "-d", str(upload), f"{base}upload"]).stdout == b"300000"
    out = run([str(NGHTTP), "-s", "-m", "6", base]).stdout.decode()
    bodies, stats = out.rsplit("***** Statistics *****", 1)
    assert bodies.strip() == "native 2 GET" * 6
    streams = nghttp_streams(stats)
    assert [(s["code"], s["size"]) for s in streams] == [(200, len("native 2 GET"))] * 6
    assert len({s["id"] for s in streams}) == 6


# -- h2load ------------------------------------------------------------------------------------
H2LOAD_APPS = {
    "native": (h2_apps.native_app, "/"),
    "asgi": (h2_apps.asgi_app, "/"),
    "fastapi": (h2_apps.fastapi_app, "/items/7?q=x"),
}


@needs_h2load
@pytest.mark.parametrize("kind", [*H2LOAD_APPS, "asgi-tls"])
def test_h2load_small_run_every_request_succeeds(serve: Serve, certs: Certs, kind: str) -> None:
    """h2load -n 2000 -c 4 -m 10: 40 streams in flight, every answer a 2xx."""
    app, path = H2LOAD_APPS[kind.removesuffix("-tls")]
    if kind.endswith("-tls"):
        server = tls_server(serve, certs, app)
        url = https(server, path)
    else:
        server = serve(app)
        url = server.url(path)
    out = run([str(H2LOAD), "-n", "2000", "-c", "4", "-m", "10", url], timeout=120).stdout.decode()
    result = parse_h2load_output(out)
    assert result.protocol == ("h2" if kind.endswith("-tls") else "h2c")
    assert (result.total, result.done, result.succeeded) == (2000, 2000, 2000)
    assert result.statuses == {"2xx": 2000, "3xx": 0, "4xx": 0, "5xx": 0}
    assert (result.failed, result.errored, result.timeouts) == (0, 0, 0)


# -- curl --------------------------------------------------------------------------------------
def curl_http2(certs: Certs, tls: bool) -> list[str]:
    """HTTP/2 by ALPN over TLS, trusting the test CA; else h2c with prior knowledge."""
    return ["--http2", "--cacert", certs.ca_file] if tls else ["--http2-prior-knowledge"]


TRANSFER = re.compile(r"\[([\d.]+ \d+)\]")


def curl(*args: str) -> tuple[bytes, list[str]]:
    """curl's body, and per transfer the HTTP version it used and the connections it
    opened (``-w`` to stderr: "2 1")."""
    done = run([str(CURL), "-sS", "--fail", "-w", "%{stderr}[%{http_version} %{num_connects}]", *args])
    # --parallel draws its progress meter on stderr too, -s or not.
    return done.stdout, TRANSFER.findall(done.stderr.decode())


@needs_curl
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_curl_large_download_and_upload(serve: Serve, certs: Certs, tls: bool, tmp_path: Path) -> None:
    """4 MiB down and 3 MiB up on one connection each, far past every initial window."""
    base, how = start(serve, certs, h2_apps.asgi_app, tls), curl_http2(certs, tls)
    body, transfers = curl(*how, f"{base}stream?n=64")
    assert transfers == ["2 1"]
    assert len(body) == 64 * h2_apps.CHUNK and body == b"x" * len(body)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"b" * (3 << 20))
    assert curl(*how, "--data-binary", f"@{upload}", f"{base}count") == (str(3 << 20).encode(), ["2 1"])
    # And the echo: what went up comes back, byte for byte.
    upload.write_bytes(bytes(range(256)) * 1024)
    assert curl(*how, "--data-binary", f"@{upload}", f"{base}echo") == (upload.read_bytes(), ["2 1"])


@needs_curl
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_curl_native_upload_and_parallel_transfers(
    serve: Serve, certs: Certs, tls: bool, tmp_path: Path
) -> None:
    base, how = start(serve, certs, h2_apps.native_app, tls), curl_http2(certs, tls)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"n" * 500_000)
    assert curl(*how, "--data-binary", f"@{upload}", f"{base}upload") == (b"500000", ["2 1"])
    if not tls:
        # curl before 8.0 fails a reused prior-knowledge connection ("Error in the HTTP2
        # framing layer", curl/curl#10634, fixed by #10643); Debian 12's 7.88 does so
        # against Hypercorn and Granian too. Parallel transfers: over TLS only.
        return
    # Five transfers at once: curl waits for the first connection to say it multiplexes,
    # then runs all five as streams on it (one connection opened in all).
    body, transfers = curl(*how, "--parallel", *[base] * 5)
    assert body == b"native 2 GET" * 5
    assert sorted(transfers) == ["2 0"] * 4 + ["2 1"]


# -- Chromium ----------------------------------------------------------------------------------
FETCH_JSON = """
const done = arguments[arguments.length - 1];
fetch("/json").then((r) => r.json()).then((body) => {
  const entry = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/json"));
  done({body: body, protocol: entry ? entry.nextHopProtocol : null});
}, (error) => done({error: String(error)}));
"""


needs_browser = pytest.mark.skipif(
    bool(BROWSER_MISSING), reason="browser test needs " + ", ".join(BROWSER_MISSING)
)


def open_demo(serve: Serve, certs: Certs, driver: Any) -> RunningServer:
    """The demo's real-time page over TLS, in a browser that takes the test CA's
    certificate (as --ignore-certificate-errors would)."""
    from examples.demo import app

    driver.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": True})
    server = tls_server(serve, certs, app)
    driver.get(https(server, "/realtime?interval=0.1"))
    return server


@needs_browser
def test_chromium_loads_the_demo_over_h2(serve: Serve, certs: Certs, browser: Any) -> None:
    """The page and its fetches come over h2, and the SSE feed streams on it."""
    from selenium.webdriver.support.ui import WebDriverWait

    open_demo(serve, certs, browser)
    protocol = browser.execute_script("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
    assert protocol == "h2"
    fetched = browser.execute_async_script(FETCH_JSON)
    assert fetched == {"body": {"message": "Hello, world!"}, "protocol": "h2"}
    ticks = WebDriverWait(browser, 20, poll_frequency=0.1).until(
        lambda d: (
            (t := d.execute_script("return window.realtime.sse.map((e) => e.tick)")) and len(t) >= 3 and t
        )
    )
    assert ticks[:3] == [0, 1, 2]
    assert browser.find_element("id", "sse-status").text == "open"


@needs_browser
def test_chromium_websockets_over_h2(serve: Serve, certs: Certs, browser: Any) -> None:
    """The page's WebSocket opens as a stream of the page's h2 connection (RFC 8441:
    the server announces extended CONNECT) and echoes."""
    from selenium.webdriver.support.ui import WebDriverWait

    from blazeasgi.engine.h2tunnel import StreamTunnel

    server = open_demo(serve, certs, browser)
    protocol = browser.execute_script("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
    assert protocol == "h2"
    settled = WebDriverWait(browser, 20, poll_frequency=0.1).until(
        lambda d: (s := d.find_element("id", "ws-status").text) != "connecting" and s
    )
    assert settled == "open"
    WebDriverWait(browser, 10, poll_frequency=0.1).until(
        lambda d: "echo: hello from the browser" in d.execute_script("return window.realtime.ws")
    )
    sessions = list(server.state.websockets)
    assert sessions and all(isinstance(ws.transport, StreamTunnel) for ws in sessions)
    h2 = [c for c in server.state.connections if isinstance(c, http2.HTTP2Connection)]
    assert len(h2) == 1  # the page, its fetches and the WebSocket: one connection
