"""``python -m blazeasgi`` as a user runs it: in a subprocess, talked to over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from ..helpers.cli import APPS, ROOT, TIMEOUT, assert_one_line_error, free_port, run_cli, start_tcp


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_serves_asgi_app(blaze, loop: str) -> None:
    b, url = start_tcp(blaze, f"{APPS}:app", "--loop", loop)
    r = httpx.get(f"{url}/hello/w%C3%B6rld?x=1", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"kind": "asgi", "path": "/hello/wörld", "root_path": ""}
    assert r.headers["server"] == "blazeasgi"
    assert "date" in r.headers
    assert b.stop() == 0


def test_serves_native_app(blaze) -> None:
    b, url = start_tcp(blaze, f"{APPS}:native")
    r = httpx.get(url, timeout=5)
    assert (r.status_code, r.text) == (200, "native hello")
    assert b.stop() == 0


def test_blazeasgi_console_script(blaze) -> None:
    script = shutil.which("blazeasgi", path=os.path.dirname(sys.executable)) or shutil.which("blazeasgi")
    if script is None:
        pytest.skip("blazeasgi script not on PATH")
    out = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0
    assert out.stdout.startswith("blazeasgi ")


def test_factory(blaze) -> None:
    b, url = start_tcp(blaze, f"{APPS}:create_app", "--factory")
    assert httpx.get(url, timeout=5).json()["kind"] == "factory"
    assert b.stop() == 0


def test_app_dir(blaze, tmp_path: Path) -> None:
    (tmp_path / "elsewhere_app.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'from app dir'})\n"
    )
    port = free_port()
    b = blaze("elsewhere_app:app", "--port", str(port), "--app-dir", str(tmp_path), cwd=Path("/"))
    b.wait_for("Serving on")
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "from app dir"
    assert b.stop() == 0


def test_root_path(blaze) -> None:
    b, url = start_tcp(blaze, f"{APPS}:app", "--root-path", "/api")
    assert httpx.get(f"{url}/users", timeout=5).json() == {
        "kind": "asgi",
        "path": "/api/users",
        "root_path": "/api",
    }
    assert b.stop() == 0


def test_uds(blaze) -> None:
    tmp = tempfile.mkdtemp(prefix="blz", dir="/tmp")  # short: AF_UNIX paths are limited
    try:
        path = os.path.join(tmp, "s.sock")
        b = blaze(f"{APPS}:app", "--uds", path)
        b.wait_for(f"Serving on unix:{path}")
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=5) as client:
            r = client.get("http://localhost/over/unix")
        assert r.json()["path"] == "/over/unix"
        assert b.stop() == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_access_log_by_default(blaze) -> None:
    b, url = start_tcp(blaze, f"{APPS}:app")
    httpx.get(f"{url}/logged?q=1", timeout=5)
    line = b.wait_for('"GET /logged?q=1 HTTP/1.1" 200')
    assert "127.0.0.1:" in line
    assert b.stop() == 0


def test_no_access_log(blaze) -> None:
    b, url = start_tcp(blaze, f"{APPS}:app", "--no-access-log")
    assert httpx.get(f"{url}/quiet", timeout=5).status_code == 200
    assert b.stop() == 0
    assert not [line for line in b.log if "/quiet" in line]
    assert any("Stopped" in line for line in b.log)


@pytest.mark.parametrize(
    ("flags", "server", "date"),
    [([], True, True), (["--no-server-header"], False, True), (["--no-date-header"], True, False)],
)
def test_default_headers_flags(blaze, flags: list[str], server: bool, date: bool) -> None:
    b, url = start_tcp(blaze, f"{APPS}:app", "--no-access-log", *flags)
    r = httpx.get(url, timeout=5)
    assert ("server" in r.headers) is server
    assert ("date" in r.headers) is date
    assert b.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully(blaze, sig: int) -> None:
    b, url = start_tcp(blaze, f"{APPS}:app")
    assert b.stop(sig) == 0
    assert any("Stopped" in line for line in b.log)
    assert not [line for line in b.log if "Traceback" in line]
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


def test_sigterm_lets_in_flight_request_finish(blaze) -> None:
    b, url = start_tcp(blaze, f"{APPS}:app", "--no-access-log")
    result: list[httpx.Response | BaseException] = []

    def slow() -> None:
        try:
            result.append(httpx.get(f"{url}/slow", timeout=5))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)  # the request is in the app's 0.5 s sleep
    assert b.stop(signal.SIGTERM) == 0
    thread.join(TIMEOUT)
    [r] = result
    assert isinstance(r, httpx.Response), r
    assert r.json()["path"] == "/slow"


# -- errors: one line on stderr, exit code 1, no traceback --------------------------------------


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("tests.apps.no_such_module:app", ['Could not import module "tests.apps.no_such_module"']),
        ("no_such_top_level_module:app", ["no_such_top_level_module"]),
        (f"{APPS}:missing", ['Attribute "missing" not found', APPS]),
        (f"{APPS}:native.nope", ['"native.nope"']),
        (APPS, ["<module>:<attribute>"]),
        (f"{APPS}:", ["<module>:<attribute>"]),
        (":app", ["<module>:<attribute>"]),
        ("tests.apps.broken_import:app", ["tests.apps.broken_import", "blazeasgi_no_such_dependency"]),
        (f"{APPS}:NOT_CALLABLE", ["42"]),
    ],
)
def test_app_load_errors(target: str, words: list[str]) -> None:
    assert_one_line_error(run_cli(target, "--port", str(free_port())), *words)


def test_factory_errors() -> None:
    assert_one_line_error(run_cli(f"{APPS}:bad_factory", "--factory"), "factory exploded")
    assert_one_line_error(run_cli(f"{APPS}:NOT_CALLABLE", "--factory"), "not callable")


def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli(f"{APPS}:app", "--port", str(port))
    assert_one_line_error(out, "bind")


def test_lifespan_startup_failure() -> None:
    out = run_cli(f"{APPS}:failing_startup", "--port", str(free_port()))
    assert_one_line_error(out, "startup failed", "db unreachable")


def test_lifespan_off_skips_failing_startup(blaze) -> None:
    b, url = start_tcp(blaze, f"{APPS}:failing_startup", "--lifespan", "off", "--no-access-log")
    assert httpx.get(url, timeout=5).status_code == 500  # served: the app only fails on http
    assert b.stop() == 0


# -- the user's own error while importing: its traceback, then the one line -----------------------
def test_error_in_user_code_prints_its_traceback() -> None:
    out = run_cli("tests.apps.raising_import:app", "--port", str(free_port()))
    assert out.returncode == 1, out
    lines = out.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):", out.stderr
    helper = str(ROOT / "tests" / "apps" / "raising_helper.py")
    frames = [line.strip() for line in lines if line.lstrip().startswith("File ")]
    assert frames == [
        f'File "{ROOT / "tests" / "apps" / "raising_import.py"}", line 5, in <module>',
        f'File "{helper}", line 7, in make_app',
    ]
    assert "NameError: name 'undefined_name' is not defined" in lines
    assert lines[-1] == (
        'Error: Error importing "tests.apps.raising_import": '
        "NameError: name 'undefined_name' is not defined"
    )


def test_syntax_error_in_user_code_shows_the_line(tmp_path: Path) -> None:
    (tmp_path / "syntax_error_app.py").write_text("app = (\n")
    out = run_cli("syntax_error_app:app", "--app-dir", str(tmp_path), "--port", str(free_port()))
    assert out.returncode == 1, out
    assert f'File "{tmp_path / "syntax_error_app.py"}", line 1' in out.stderr
    assert "SyntaxError" in out.stderr.splitlines()[-2]
    assert out.stderr.splitlines()[-1].startswith('Error: Error importing "syntax_error_app": SyntaxError')


@pytest.mark.parametrize(
    "target", ["tests.apps.no_such_module:app", f"{APPS}:missing", "tests.apps.broken_import:app"]
)
def test_missing_module_or_attribute_stays_one_line(target: str) -> None:
    out = run_cli(target, "--port", str(free_port()))
    assert_one_line_error(out)
    assert "File " not in out.stderr


# -- uvicorn's lifecycle lines ------------------------------------------------------------------------
def _in_order(log: list[str], expected: list[str]) -> list[str]:
    """The log lines that contain one of ``expected``, in the order they came."""
    return [want for line in log for want in expected if line.endswith(want)]


def test_lifecycle_lines_in_order(blaze) -> None:
    b, _ = start_tcp(blaze, f"{APPS}:app")
    assert b.stop() == 0
    pid = b.proc.pid
    expected = [
        f"Started server process [{pid}]",
        "Waiting for application startup.",
        "Application startup complete.",
        "(press CTRL+C to quit)",
        "Shutting down",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
        f"Finished server process [{pid}]",
    ]
    assert _in_order(b.log, expected) == expected, b.log


def test_lifecycle_lines_without_lifespan(blaze) -> None:
    b, _ = start_tcp(blaze, f"{APPS}:app", "--lifespan", "off")
    assert b.stop() == 0
    pid = b.proc.pid
    expected = [f"Started server process [{pid}]", "Shutting down", f"Finished server process [{pid}]"]
    assert _in_order(b.log, expected) == expected, b.log
    assert not [line for line in b.log if "application startup" in line or "application shutdown" in line]
