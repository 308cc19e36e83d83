"""Logging: the access line (content, custom formats, record fields), the default
formatter, and ``--log-config`` files as a user passes them on the command line."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blazeasgi import App, Request, Response, logs
from blazeasgi.logs import DEFAULT_ACCESS_LOG_FORMAT, AccessLogFormat, DefaultFormatter, JSONFormatter

from ..conftest import RunningServer
from ..helpers.cli import APPS, Blaze, assert_one_line_error, free_port, run_cli, start_tcp
from ..helpers.cli import TIMEOUT as CLI_TIMEOUT

Serve = Callable[..., RunningServer]
StartBlaze = Callable[..., Blaze]
Records = Callable[[int], list[logging.LogRecord]]

#: The default line: client, request line, status, body bytes, duration.
DEFAULT_LINE = re.compile(r'^127\.0\.0\.1:(\d+) - "(\S+) (\S+) HTTP/1\.1" (\d{3}) (\d+) (\d+\.\d)ms$')


# -- apps ----------------------------------------------------------------------------------
native = App()


@native.get("/hello")
def hello(request: Request) -> Response:
    return Response(b"hello, world", media_type="text/plain")


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b"created" if scope["method"] == "POST" else b"x" * 1000
    status = 201 if scope["method"] == "POST" else 404 if scope["path"] == "/missing" else 200
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def access_records(caplog: pytest.LogCaptureFixture) -> Iterator[Records]:
    """wait(n) -> the access records so far, once there are n (the server logs from its thread)."""
    caplog.set_level(logging.INFO, logger="blazeasgi.access")

    def wait(n: int) -> list[logging.LogRecord]:
        deadline = time.monotonic() + 5
        while True:
            records = [r for r in caplog.records if r.name == "blazeasgi.access"]
            if len(records) >= n or time.monotonic() > deadline:
                return records
            time.sleep(0.01)

    yield wait


def request(port: int, raw: bytes) -> tuple[int, bytes]:
    """One raw request on a fresh connection: (our local port, everything until close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return sock.getsockname()[1], data


# -- the access line, in process -----------------------------------------------------------
def test_access_line_native(serve: Serve, access_records: Records) -> None:
    server = serve(native, access_log=True)
    local_port, data = request(
        server.port, b"GET /hello?name=a%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 200 ")
    [record] = access_records(1)
    assert record.levelno == logging.INFO
    match = DEFAULT_LINE.match(record.getMessage())
    assert match is not None, record.getMessage()
    port, method, path, status, body_bytes, _ = match.groups()
    assert (int(port), method, path, status, body_bytes) == (
        local_port,
        "GET",
        "/hello?name=a%20b",
        "200",
        "12",
    )


def test_access_line_asgi(serve: Serve, access_records: Records) -> None:
    server = serve(asgi_app, access_log=True, lifespan="off")
    assert httpx.post(server.url("/items"), content=b"{}").status_code == 201
    assert httpx.get(server.url("/missing")).status_code == 404
    _, data = request(server.port, b"HEAD /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ")
    records = access_records(3)
    lines = [DEFAULT_LINE.match(r.getMessage()) for r in records]
    assert all(lines), [r.getMessage() for r in records]
    got = sorted(m.group(2, 3, 4, 5) for m in lines if m)
    # HEAD: the body a GET would have had (1000 bytes) is neither sent nor counted.
    assert got == [
        ("GET", "/missing", "404", "1000"),
        ("HEAD", "/big", "200", "0"),
        ("POST", "/items", "201", "7"),
    ]


def test_access_record_fields(serve: Serve, access_records: Records) -> None:
    """The fields are record attributes too: what a JSON formatter in --log-config reads."""
    server = serve(asgi_app, access_log=True, lifespan="off")
    httpx.get(server.url("/big?q=1"))
    [record] = access_records(1)
    fields: Any = record
    assert (fields.method, fields.path, fields.version, fields.status, fields.bytes) == (
        "GET",
        "/big?q=1",
        "1.1",
        200,
        1000,
    )
    assert fields.client.startswith("127.0.0.1:")
    assert fields.duration_ms >= 0
    out = json.loads(JSONFormatter().format(record))
    assert out["logger"] == "blazeasgi.access"
    assert (out["status"], out["bytes"], out["path"], out["client"]) == (200, 1000, "/big?q=1", fields.client)
    assert out["message"] == record.getMessage()


def test_custom_format_with_headers(serve: Serve, access_records: Records) -> None:
    fmt = "%(method)s %(path)s -> %(status)d [%(header_user_agent)s] [%(header_x_request_id)s] %%"
    server = serve(native, access_log=True, access_log_format=fmt)
    with httpx.Client() as client:  # one connection: the records come in order
        client.get(server.url("/hello"), headers={"user-agent": "probe/1.0", "x-request-id": "abc-123"})
        client.get(server.url("/nope"), headers={"user-agent": "probe/2.0"})
    records = access_records(2)
    assert [r.getMessage() for r in records] == [
        "GET /hello -> 200 [probe/1.0] [abc-123] %",
        "GET /nope -> 404 [probe/2.0] [-] %",
    ]
    assert getattr(records[0], "header_x_request_id", None) == "abc-123"


def test_access_log_off_logs_nothing(serve: Serve, access_records: Records) -> None:
    off = serve(native, access_log=False)
    assert httpx.get(off.url("/hello?off")).status_code == 200
    # A second server that logs: its record shows the capture works, and arrives
    # after any the first server would have written for its earlier request.
    on = serve(native, access_log=True)
    assert httpx.get(on.url("/hello?on")).status_code == 200
    records = access_records(1)
    assert [getattr(r, "path", None) for r in records] == ["/hello?on"]


def test_invalid_format_in_code_falls_back(
    serve: Serve, access_records: Records, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "_compiled", {})  # the warning is said once per process
    server = serve(native, access_log=True, access_log_format="%(nope)s")
    httpx.get(server.url("/hello"))
    [record] = access_records(1)
    assert DEFAULT_LINE.match(record.getMessage())
    errors = [r.getMessage() for r in caplog.records if r.name == "blazeasgi.error"]
    assert any("unknown field %(nope)s" in e for e in errors), errors


# -- formats and formatters ------------------------------------------------------------------
def test_format_validation() -> None:
    assert AccessLogFormat(DEFAULT_ACCESS_LOG_FORMAT).headers == ()
    assert AccessLogFormat("%(header_User_Agent)s %(status)s").headers == (
        ("header_User_Agent", b"user-agent"),
    )
    with pytest.raises(ValueError, match=r"unknown field %\(stauts\)s"):
        AccessLogFormat("%(stauts)d")
    with pytest.raises(ValueError, match="invalid format"):
        AccessLogFormat("%(status)q")
    with pytest.raises(ValueError, match="invalid format"):
        AccessLogFormat("%(method)d")  # a str field cannot be %d
    with pytest.raises(ValueError, match="unknown field"):
        AccessLogFormat("%(header_)s")


def _record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("blazeasgi.error", level, __file__, 1, msg, None, None)


def test_default_formatter() -> None:
    plain = DefaultFormatter(use_colors=False)
    assert plain.format(_record(logging.INFO, "Serving")) == "INFO:     Serving"
    assert plain.format(_record(logging.WARNING, "careful")) == "WARNING:  careful"
    assert plain.format(_record(logging.ERROR, "boom")) == "ERROR:    boom"
    coloured = DefaultFormatter(use_colors=True).format(_record(logging.ERROR, "boom"))
    assert coloured == "\x1b[31mERROR\x1b[0m:    boom"


# -- on the command line ---------------------------------------------------------------------
def test_cli_default_access_line(blaze: StartBlaze) -> None:
    b, url = start_tcp(blaze, f"{APPS}:native", "--no-use-colors")
    httpx.get(f"{url}/?a=1", timeout=5)
    line = b.wait_for('"GET /?a=1 HTTP/1.1"')
    assert line.startswith("INFO:     127.0.0.1:")
    match = DEFAULT_LINE.match(line.removeprefix("INFO:     "))
    assert match is not None, line
    assert match.group(4, 5) == ("200", "12")  # "native hello"
    assert b.stop() == 0


def test_cli_custom_format_and_colors(blaze: StartBlaze) -> None:
    fmt = "%(method)s|%(status)d|%(bytes)d"
    b, url = start_tcp(blaze, f"{APPS}:app", "--use-colors", "--access-log-format", fmt)
    r = httpx.get(f"{url}/x", timeout=5)
    line = b.wait_for("GET|200|")
    assert line == f"\x1b[32mINFO\x1b[0m:     GET|200|{len(r.content)}"
    assert b.stop() == 0


def test_cli_bad_access_log_format() -> None:
    out = run_cli(f"{APPS}:app", "--access-log-format", "%(stauts)d")
    assert out.returncode == 2
    assert "--access-log-format" in out.stderr and "stauts" in out.stderr
    assert "Traceback" not in out.stderr


JSON_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "fields": {"format": "%(levelname)s %(method)s %(path)s %(status)d %(bytes)d"},
        "json": {"()": "blazeasgi.logs.JSONFormatter"},
        "plain": {"format": "%(levelname)s: %(message)s"},
    },
    "handlers": {
        "file": {"class": "logging.FileHandler", "filename": "ACCESS", "formatter": "fields"},
        "jsonfile": {"class": "logging.FileHandler", "filename": "JSON", "formatter": "json"},
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "loggers": {
        "blazeasgi.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "blazeasgi.access": {"handlers": ["file", "jsonfile"], "level": "INFO", "propagate": False},
    },
}


def _json_config(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(log.json, the access file it writes, the JSON-lines file it writes)."""
    config: Any = json.loads(json.dumps(JSON_CONFIG))
    access, as_json = tmp_path / "access.log", tmp_path / "access.jsonl"
    config["handlers"]["file"]["filename"] = str(access)
    config["handlers"]["jsonfile"]["filename"] = str(as_json)
    path = tmp_path / "log.json"
    path.write_text(json.dumps(config))
    return path, access, as_json


def _to_yaml(value: dict[str, Any], indent: int = 0) -> str:
    """Enough YAML for the config above: nested mappings of JSON scalars."""
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(f"{' ' * indent}{json.dumps(key)}:\n{_to_yaml(item, indent + 2)}")
        else:
            lines.append(f"{' ' * indent}{json.dumps(key)}: {json.dumps(item)}")
    return "\n".join(lines)


def _asgi_body(path: str) -> bytes:
    return json.dumps({"kind": "asgi", "path": path, "root_path": ""}).encode()


@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_cli_log_config_dict(blaze: StartBlaze, tmp_path: Path, kind: str) -> None:
    path, access, as_json = _json_config(tmp_path)
    if kind == "yaml":
        pytest.importorskip("yaml")
        yaml_path = tmp_path / "log.yaml"
        yaml_path.write_text(_to_yaml(json.loads(path.read_text())) + "\n")
        path.unlink()
        path = yaml_path
    b, url = start_tcp(blaze, f"{APPS}:app", "--log-config", str(path))
    httpx.get(f"{url}/from/{kind}?q=1", timeout=5)
    httpx.post(f"{url}/posted", timeout=5)
    assert b.stop() == 0
    assert access.read_text().splitlines() == [
        f"INFO GET /from/{kind}?q=1 200 {len(_asgi_body(f'/from/{kind}'))}",
        f"INFO POST /posted 200 {len(_asgi_body('/posted'))}",
    ]
    first = json.loads(as_json.read_text().splitlines()[0])
    assert (first["method"], first["status"], first["version"]) == ("GET", 200, "1.1")
    assert not [line for line in b.log if "/from/" in line]  # the file decides: not on stderr


INI_CONFIG = """\
[loggers]
keys=root,error,access

[handlers]
keys=stderr,file

[formatters]
keys=plain,fields

[logger_root]
level=WARNING
handlers=stderr

[logger_error]
level=INFO
handlers=stderr
qualname=blazeasgi.error
propagate=0

[logger_access]
level=INFO
handlers=file
qualname=blazeasgi.access
propagate=0

[handler_stderr]
class=StreamHandler
formatter=plain
args=(sys.stderr,)

[handler_file]
class=FileHandler
formatter=fields
args=({path!r}, "a")

[formatter_plain]
format=%(levelname)s: %(message)s

[formatter_fields]
format=ini %(client)s %(method)s %(status)d
"""


def test_cli_log_config_ini(blaze: StartBlaze, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    path = tmp_path / "log.ini"
    path.write_text(INI_CONFIG.format(path=str(access)))
    b, url = start_tcp(blaze, f"{APPS}:native", "--log-config", str(path))
    httpx.get(url, timeout=5)
    assert b.stop() == 0
    [line] = access.read_text().splitlines()
    assert re.fullmatch(r"ini 127\.0\.0\.1:\d+ GET 200", line), line


def test_cli_no_access_log_with_log_config(blaze: StartBlaze, tmp_path: Path) -> None:
    path, access, as_json = _json_config(tmp_path)
    b, url = start_tcp(blaze, f"{APPS}:app", "--log-config", str(path), "--no-access-log")
    assert httpx.get(url, timeout=5).status_code == 200
    assert b.stop() == 0
    assert access.read_text() == "" and as_json.read_text() == ""
    assert any("Stopped" in line for line in b.log)


def test_cli_log_level_on_top_of_log_config(blaze: StartBlaze, tmp_path: Path) -> None:
    """An explicit --log-level still sets blazeasgi's loggers' level over the file's."""
    path, access, _ = _json_config(tmp_path)
    port = free_port()
    b = blaze(f"{APPS}:app", "--port", str(port), "--log-config", str(path), "--log-level", "warning")
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + CLI_TIMEOUT
    while True:  # no "Serving on" to wait for at warning level
        try:
            r = httpx.get(url, timeout=5)
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline and b.proc.poll() is None, "server did not start"
            time.sleep(0.05)
    assert r.status_code == 200
    assert b.stop() == 0
    assert access.read_text() == ""
    assert not [line for line in b.log if "Serving on" in line or "Stopped" in line]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.json", None, ["no such file"]),
        ("bad.json", '{"version": 1,', ["bad.json", "Expecting"]),
        ("list.yaml", "- 1\n- 2\n", ["list.yaml", "mapping"]),
        ("nohandler.json", '{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}', ["handler"]),
        ("noversion.json", '{"handlers": {}}', ["version"]),
        ("empty.ini", "[loggers]\n", ["empty.ini"]),
    ],
)
def test_cli_bad_log_config(tmp_path: Path, name: str, content: str | None, words: list[str]) -> None:
    if name.endswith(".yaml"):
        pytest.importorskip("yaml")
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    out = run_cli(f"{APPS}:app", "--port", str(free_port()), "--log-config", str(path))
    assert_one_line_error(out, "--log-config", *words)
