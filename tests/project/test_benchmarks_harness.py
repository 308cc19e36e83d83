"""The benchmark harness's own logic: wrk scripts and parsing, tables and ratios, the
TechEmpower verifier against a tiny fake server, query-count clamping, and
``blazeasgi bench`` end to end with a stand-in for wrk. No real wrk, no PostgreSQL,
no timing asserts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from blazeasgi import bench, benchprocess, wrk
from blazeasgi.benchprocess import Reply
from blazeasgi.wrk import BenchError, WrkResult

ROOT = Path(__file__).resolve().parents[2]

SUMMARY = {
    "requests": 1000,
    "duration_us": 2_000_000,
    "bytes": 150_000,
    "connect": 1,
    "read": 2,
    "write": 3,
    "status": 4,
    "timeout": 5,
    "min": 100,
    "max": 9000,
    "mean": 850.5,
    "stdev": 12.25,
    "p50": 800,
    "p75": 900,
    "p90": 1000,
    "p99": 2500,
    "p999": 8000,
}

FAKE_WRK = """#!{python}
import json, os, sys
args = sys.argv[1:]
log = os.environ.get("FAKE_WRK_LOG")
if log:
    script = open(args[args.index("-s") + 1]).read()
    with open(log, "a") as f:
        f.write(json.dumps({{"argv": args, "script": script}}) + "\\n")
if os.environ.get("FAKE_WRK_FAIL"):
    print("unable to connect to 127.0.0.1", file=sys.stderr)
    sys.exit(1)
print("Running 1s test")
print("BENCH_JSON " + {summary!r})
"""


@pytest.fixture
def fake_wrk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``wrk`` on PATH that logs its arguments and script, then prints a fixed summary."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "wrk"
    exe.write_text(FAKE_WRK.format(python=sys.executable, summary=json.dumps(SUMMARY)))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "wrk.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_WRK_LOG", str(log))
    return log


def wrk_calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# -- wrk scripts and output -------------------------------------------------------------------------


def test_lua_script_pipeline_and_post_body() -> None:
    script = wrk.lua_script("POST", b"x" * 4096, {"Content-Type": "application/octet-stream"}, pipeline=16)
    assert 'wrk.method = "POST"' in script
    assert 'wrk.body = string.rep("x", 4096)' in script
    assert 'wrk.headers["Content-Type"] = "application/octet-stream"' in script
    assert "for i = 1, 16 do r[i] = wrk.format() end" in script
    assert "request = function() return req end" in script
    assert "done = function(summary, latency, requests)" in script
    plain = wrk.lua_script()
    assert "init" not in plain and "wrk.body" not in plain


def test_lua_string_escapes_quotes_and_bytes() -> None:
    assert wrk._lua_string('a"b\\c') == '"a\\034b\\092c"'
    assert wrk._lua_string(b"\x00\n\xff") == '"\\000\\010\\255"'
    assert 'wrk.body = "{\\034a\\034:1}"' in wrk.lua_script("POST", b'{"a":1}')
    # A digit after an escaped byte stays a digit: Lua reads up to three after "\\"
    # ('"24' was read as byte 342 and wrk refused the whole script).
    assert wrk._lua_string('v="24"') == '"v=\\03424\\034"'


def test_parse_wrk_output() -> None:
    result = wrk.parse_wrk_output("Running 10s test\nBENCH_JSON " + json.dumps(SUMMARY) + "\n")
    assert result.requests == 1000 and result.duration_s == 2.0
    assert result.rps == 500.0 and result.transfer_per_s == 75_000.0
    assert result.socket_errors == 6 and result.status_errors == 4 and result.timeouts == 5
    assert result.latency_us["p99"] == 2500.0 and result.latency_us["mean"] == 850.5
    assert WrkResult.from_dict(result.to_dict()) == result


def test_parse_wrk_output_nan_and_missing() -> None:
    nan_line = "BENCH_JSON " + json.dumps(SUMMARY).replace("850.5", "-nan").replace("12.25", "nan")
    assert wrk.parse_wrk_output(nan_line).latency_us["mean"] == 0.0
    with pytest.raises(BenchError, match="wrk printed no summary"):
        wrk.parse_wrk_output("unable to connect\n")
    with pytest.raises(BenchError, match="unreadable"):
        wrk.parse_wrk_output("BENCH_JSON {broken")


def test_zero_duration_and_median() -> None:
    empty = WrkResult(0, 0.0, 0)
    assert empty.rps == 0.0 and empty.transfer_per_s == 0.0
    runs = [WrkResult(n, 1.0, 0) for n in (300, 100, 200, 400)]
    assert wrk.median_result(runs).requests == 200  # the lower middle of an even count
    assert wrk.median_result(runs[:3]).requests == 200
    with pytest.raises(ValueError):
        wrk.median_result([])


def test_wrk_command_clamps_threads() -> None:
    argv = wrk.wrk_command(
        "wrk", "http://x/", 2, 3, "s.lua", threads=4, timeout=8, prefix=["taskset", "-c", "1"]
    )
    assert argv == [
        "taskset", "-c", "1", "wrk", "-t", "2", "-c", "2", "-d", "3s", "--timeout", "8s", "-s", "s.lua", "http://x/",
    ]  # fmt: skip


def test_run_wrk_with_fake_wrk(fake_wrk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = wrk.run_wrk("http://127.0.0.1:1/", 10, 1, wrk.lua_script(pipeline=4))
    assert result.requests == 1000
    (call,) = wrk_calls(fake_wrk)
    assert call["argv"][:6] == ["-t", "1", "-c", "10", "-d", "1s"]
    assert "for i = 1, 4 do" in call["script"]
    monkeypatch.setenv("FAKE_WRK_FAIL", "1")
    with pytest.raises(BenchError, match="wrk failed with status 1: unable to connect"):
        wrk.run_wrk("http://127.0.0.1:1/", 10, 1, wrk.lua_script())


def test_find_wrk_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wrk.shutil, "which", lambda name: None)
    with pytest.raises(BenchError, match="apt-get install -y wrk"):
        wrk.find_wrk()


def test_pinning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchprocess.shutil, "which", lambda name: "/usr/bin/taskset")
    monkeypatch.setattr(benchprocess.os, "sched_getaffinity", lambda pid: {3, 5, 7}, raising=False)
    assert benchprocess.pinning() == (["/usr/bin/taskset", "-c", "3"], ["/usr/bin/taskset", "-c", "5"])
    assert benchprocess.pinning(enabled=False) == ([], [])
    monkeypatch.setattr(benchprocess.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert benchprocess.pinning() == ([], [])


def test_small_helpers() -> None:
    assert benchprocess.raise_fd_limit(256) >= 256
    assert 0 < benchprocess.free_port() < 65536
    assert benchprocess.module_available("json") and not benchprocess.module_available("no_such_module_here")
    assert not benchprocess.module_available("no_such_package.sub")
    reply = Reply(200, [("Content-Type", "text/plain")], b"")
    assert reply.header("content-type") == "text/plain" and reply.header("server") is None


# -- formatting --------------------------------------------------------------------------------------


def test_formatting() -> None:
    assert wrk.fmt_rps(123456.7) == "123,457" and wrk.fmt_rps(None) == wrk.NA
    assert wrk.fmt_ratio(150.0, 100.0) == "1.50x"
    assert wrk.fmt_ratio(150.0, None) == wrk.NA and wrk.fmt_ratio(150.0, 0.0) == wrk.NA
    assert wrk.fmt_ratio(None, 100.0) == wrk.NA and wrk.fmt_ratio(1.0, float("nan")) == wrk.NA
    assert wrk.fmt_latency(850) == "850 µs" and wrk.fmt_latency(2500) == "2.50 ms"
    assert wrk.fmt_latency(3_200_000) == "3.20 s" and wrk.fmt_latency(None) == wrk.NA
    assert wrk.fmt_bytes_rate(512) == "512 B/s" and wrk.fmt_bytes_rate(2048) == "2.00 KiB/s"
    assert wrk.fmt_bytes_rate(3 << 20) == "3.00 MiB/s" and wrk.fmt_bytes_rate(5 << 30) == "5.00 GiB/s"
    assert wrk.fmt_bytes_rate(None) == wrk.NA


def test_markdown_table_alignment() -> None:
    table = wrk.markdown_table(["server", "req/s"], [["a", "1,000"], ["longer-name", "5"], ["short"]], "lr")
    assert table.splitlines() == [
        "| server      | req/s |",
        "| ----------- | ----: |",
        "| a           | 1,000 |",
        "| longer-name |     5 |",
        "| short       |       |",
    ]


def test_render_bench_table_ratios() -> None:
    contenders = [bench.Contender("blazeasgi", lambda p: []), bench.Contender("uvicorn", lambda p: [])]
    fast = WrkResult(2000, 1.0, 0, latency_us={"p99": 1500.0})
    slow = WrkResult(1000, 1.0, 0, latency_us={"p99": 3000.0})
    table = bench.render_bench_table(
        contenders, {"/": {"blazeasgi": fast, "uvicorn": slow}, "/x": {"uvicorn": slow}}
    )
    lines = table.splitlines()
    assert lines[0].endswith("| vs uvicorn |") and lines[-1].startswith("vs: blazeasgi's req/s divided")
    assert lines[2].split("|")[1:-1] == [" /    ", "           2,000 ", " 1.50 ms ", "         1,000 ",
                                         " 3.00 ms ", "      2.00x "]  # fmt: skip
    assert lines[3].rstrip().endswith(f"{wrk.NA} |")


# -- ServerProcess ----------------------------------------------------------------------------------


def test_server_process_ready_and_stopped() -> None:
    port = benchprocess.free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with benchprocess.ServerProcess("http.server", argv, port, cwd=ROOT, stop_signal=signal.SIGINT) as server:
        reply = server.wait_ready("/", timeout=20)
        assert reply.status == 200
        proc = server.proc
    assert proc is not None and proc.poll() is not None
    server.stop()  # idempotent


def test_server_process_reports_early_exit_and_silence() -> None:
    argv = [sys.executable, "-c", "import sys; print('boom: no app'); sys.exit(3)"]
    with benchprocess.ServerProcess("broken", argv, benchprocess.free_port()) as server:
        with pytest.raises(BenchError, match="broken exited with status 3: boom: no app"):
            server.wait_ready(timeout=20)
    port = benchprocess.free_port()
    silent = [sys.executable, "-c", "import time; time.sleep(30)"]
    with benchprocess.ServerProcess("silent", silent, port) as server:
        with pytest.raises(BenchError, match="did not answer GET / within 0 s"):
            server.wait_ready(timeout=0.2)
    assert server.proc is not None and server.proc.returncode is not None
    with pytest.raises(BenchError, match="could not start"):
        benchprocess.ServerProcess("missing", ["/nonexistent/binary"], port).start()


# -- blazeasgi bench ----------------------------------------------------------------------------------


def test_bench_main_asgi_app(fake_wrk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvicorn")
    out = tmp_path / "bench.json"
    argv = ["benchmarks.apps.hello_asgi:app", "--path", "/", "--path", "/json", "-c", "8", "-d", "1"]
    assert bench.main([*argv, "--warmup", "1", "--app-dir", str(ROOT), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "asgi app, 2 path(s)" in text
    assert "| path  | blazeasgi req/s |" in text and "| vs uvicorn |" in text
    assert "[4/4] uvicorn /json" in text
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"/", "/json"} and set(data["results"]["/"]) == {"blazeasgi", "uvicorn"}
    calls = wrk_calls(fake_wrk)
    assert len(calls) == 8  # warm-up + run, 2 paths, 2 servers
    assert {c["argv"][-1].rsplit("/", 1)[-1] for c in calls} == {"", "json"}


def test_bench_main_mixed_app(fake_wrk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    argv = ["benchmarks.apps.mixed_app:app", "--path", "/json", "--path", "/items/3", "--path", "/nope"]
    assert bench.main([*argv, "-d", "1", "--warmup", "0", "--app-dir", str(ROOT), "--no-pin"]) == 0
    text = capsys.readouterr().out
    assert "mixed mode" in text
    assert "vs blazeasgi (fallback) | vs uvicorn (fallback) |" in text
    assert "| /json (native)" in text and "| /items/3 (fallback)" in text
    assert "note: /nope answers 404 on every server" in text
    # /json is native in the mixed app, a FastAPI route in the fallback: same status, benchmarked.
    assert len(wrk_calls(fake_wrk)) == 9


def test_bench_main_native_app_and_status_mismatch(
    fake_wrk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["benchmarks.apps.hello_native:app", "-d", "1", "--warmup", "0", "--app-dir", str(ROOT)]
    assert bench.main(argv) == 0
    assert "cannot run on uvicorn: blazeasgi alone" in capsys.readouterr().out
    contenders = [
        bench.Contender(
            "a", lambda port: bench.blazeasgi_argv("benchmarks.apps.hello_native:app", port, str(ROOT))
        ),
        bench.Contender(
            "b", lambda port: bench.blazeasgi_argv("benchmarks.apps.hello_asgi:app", port, str(ROOT))
        ),
    ]
    ok, problems = bench._check_statuses(contenders, ["/", "/echo"], [], str(ROOT))
    assert ok == ["/"]
    assert problems == ["skipped /echo: the servers disagree on its status (a 405, b 404)"]


def test_bench_main_errors(
    fake_wrk: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["benchmarks.apps.hello_asgi:app", "--path", "nope"]) == 2
    assert bench.main(["benchmarks.apps.hello_asgi:app", "-c", "0"]) == 2
    assert bench.main(["benchmarks.apps.no_such_module:app"]) == 1
    assert 'Could not import module "benchmarks.apps.no_such_module"' in capsys.readouterr().err
    assert bench.main(["benchmarks.apps.common:HELLO"]) == 1
    assert "neither a blazeasgi App nor an ASGI callable" in capsys.readouterr().err
    assert bench.main(["benchmarks.apps.mixed_app:app", "--factory"]) == 1
    assert "is not callable" in capsys.readouterr().err
    # A status check that finds nothing in common.
    monkeypatch.setattr(bench, "_check_statuses", lambda *a: ([], ["skipped /: disagree"]))
    assert bench.main(["benchmarks.apps.hello_asgi:app", "--app-dir", str(ROOT)]) == 1
    assert "nothing to benchmark" in capsys.readouterr().err
    monkeypatch.setattr(
        bench, "_check_statuses", lambda *a: (_ for _ in ()).throw(BenchError("x: GET / failed"))
    )
    assert bench.main(["benchmarks.apps.hello_asgi:app", "--app-dir", str(ROOT)]) == 1
    assert "Error: x: GET / failed" in capsys.readouterr().err


def test_bench_main_wrk_failure_and_missing_tools(
    fake_wrk: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "_check_statuses", lambda contenders, paths, *a: (list(paths), []))
    monkeypatch.setenv("FAKE_WRK_FAIL", "1")
    argv = ["benchmarks.apps.hello_native:app", "-d", "1", "--app-dir", str(ROOT), "--no-pin"]
    assert bench.main(argv) == 1
    assert "Error: wrk failed with status 1" in capsys.readouterr().err
    real_available = benchprocess.module_available
    monkeypatch.setattr(bench, "module_available", lambda name: name != "uvicorn" and real_available(name))
    assert bench.main(["benchmarks.apps.hello_asgi:app", "--app-dir", str(ROOT)]) == 1
    assert "uvicorn is not installed: pip install 'uvicorn[standard]'" in capsys.readouterr().err
    monkeypatch.setattr(wrk.shutil, "which", lambda name: None)
    assert bench.main(["benchmarks.apps.hello_asgi:app"]) == 1
    assert (
        "wrk (the HTTP load generator) is not installed: `apt-get install -y wrk`" in capsys.readouterr().err
    )


def test_contenders_factory_and_argv() -> None:
    with pytest.raises(BenchError, match="--factory with a mixed-mode App"):
        bench.contenders_for("mixed", "m:app", ".", factory=True)
    assert bench.blazeasgi_argv("m:app", 1, ".", factory=True)[-1] == "--factory"
    argv = bench.uvicorn_argv("m:app", 1, ".", factory=True)
    assert argv[-1] == "--factory" and "--no-access-log" in argv
    assert bench._route_kind(object(), "/") == ""


# -- the harness: scenarios, servers, plan, report ---------------------------------------------------


def test_scenario_checks_accept_the_reference_answers() -> None:
    from benchmarks.apps.common import DOWNLOAD_SIZE, SECURITY_HEADERS
    from benchmarks.scenarios import BY_NAME, ECHO_BODY

    hello = Reply(
        200, [("content-type", "text/plain; charset=utf-8"), *SECURITY_HEADERS.items()], b"Hello, world!"
    )
    assert BY_NAME["hello"].check(hello) is None
    assert "referrer-policy" in str(BY_NAME["hello"].check(Reply(200, hello.headers[:-1], hello.body)))
    assert "status 500" in str(BY_NAME["hello"].check(Reply(500, [], b"")))
    assert "body" in str(BY_NAME["plaintext"].check(Reply(200, [("content-type", "text/plain")], b"nope")))
    assert "content-type" in str(BY_NAME["plaintext"].check(Reply(200, [], b"Hello, World!")))
    json_ok = Reply(200, [("content-type", "application/json")], b'{"message":"Hello, World!"}')
    assert BY_NAME["json"].check(json_ok) is None
    assert "not JSON" in str(BY_NAME["json"].check(Reply(200, json_ok.headers, b"<html>")))
    assert "expected" in str(BY_NAME["json"].check(Reply(200, json_ok.headers, b'{"message":"hi"}')))
    assert "content-type" in str(BY_NAME["json"].check(Reply(200, [], json_ok.body)))
    assert "status 404" in str(BY_NAME["json"].check(Reply(404, [], b"")))
    assert (
        BY_NAME["echo"].check(Reply(200, [("content-type", "application/octet-stream")], ECHO_BODY)) is None
    )
    assert BY_NAME["download"].check(Reply(200, [], b"x" * DOWNLOAD_SIZE)) is None
    assert "bytes" in str(BY_NAME["download"].check(Reply(200, [], b"x" * 10)))
    assert "status" in str(BY_NAME["download"].check(Reply(404, [], b"")))
    item = {"id": 42, "name": "item 42", "price": 12.5, "tags": ["bench", "fastapi"]}
    assert BY_NAME["items"].check(Reply(200, [], json.dumps(item).encode())) is None
    assert "expected" in str(BY_NAME["items"].check(Reply(200, [], b'{"id": 42}')))
    assert "not JSON" in str(BY_NAME["items"].check(Reply(200, [], b"")))
    assert "status" in str(BY_NAME["items"].check(Reply(422, [], b"")))
    assert "string.rep" in BY_NAME["echo"].script() and "for i = 1, 16" in BY_NAME["plaintext"].script()


def test_plan_cells_and_server_commands() -> None:
    from benchmarks.runner import plan_cells
    from benchmarks.scenarios import BY_NAME as SC
    from benchmarks.servers import BY_NAME as SV

    servers = [SV["blazeasgi-native"], SV["uvicorn-fastapi"]]
    cells = plan_cells([SC["hello"], SC["items"]], servers, quick=False)
    assert [(s.name, c, v.name) for s, c, v in cells] == [
        ("hello", 100, "blazeasgi-native"), ("hello", 100, "uvicorn-fastapi"),
        ("hello", 1000, "blazeasgi-native"), ("hello", 1000, "uvicorn-fastapi"),
        ("hello", 10000, "blazeasgi-native"), ("hello", 10000, "uvicorn-fastapi"),
        ("items", 100, "uvicorn-fastapi"),
    ]  # fmt: skip
    assert len(plan_cells([SC["hello"]], servers, quick=True)) == 2
    assert len(plan_cells([SC["hello"]], servers, quick=True, connections=[5, 6, 7])) == 6
    for spec in SV.values():
        argv = spec.argv(8123)
        assert "8123" in " ".join(argv) or spec.process_env(8123).get("ROBYN_PORT") == "8123"
        if spec.server != "robyn":
            assert spec.target in argv
        if spec.server in ("blazeasgi", "uvicorn", "granian"):
            assert "--no-access-log" in argv
    assert SV["uvicorn-raw"].argv(1)[SV["uvicorn-raw"].argv(1).index("--http") + 1] == "httptools"
    assert "benchmarks.apps.hello_rsgi:app" in SV["granian-rsgi"].argv(1)
    assert SV["robyn"].stop_signal == signal.SIGINT


def test_server_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import servers

    monkeypatch.setattr(servers, "module_available", lambda name: name != "robyn")
    why = str(servers.BY_NAME["robyn"].missing())
    assert why.startswith("robyn is not installed (in a venv of its own:")
    assert "--python robyn=VENV/bin/python" in why
    assert servers.BY_NAME["blazeasgi-native"].missing() is None
    monkeypatch.setattr(servers, "module_available", lambda name: name != "fastapi")
    assert servers.BY_NAME["uvicorn-fastapi"].missing() == "fastapi is not installed (pip install fastapi)"


def fake_results() -> dict[str, Any]:
    def run(server: str, scenario: str, conns: int, rps: float, p99: float = 2000.0) -> dict[str, Any]:
        median = WrkResult(int(rps * 10), 10.0, int(rps * 1500), latency_us={"p50": p99 / 2, "p99": p99})
        return {"server": server, "scenario": scenario, "connections": conns, "status": "ok",
                "median": median.to_dict()}  # fmt: skip

    servers = {
        "blazeasgi-native": ("blazeasgi", "native", "uvicorn-raw", "granian-rsgi"),
        "blazeasgi-asgi": ("blazeasgi", "asgi", "uvicorn-raw", "granian-asgi"),
        "uvicorn-raw": ("uvicorn", "asgi", None, "granian-asgi"),
        "granian-rsgi": ("granian", "rsgi", "uvicorn-raw", None),
    }
    return {
        "title": "test run",
        "created": "2026-01-01T00:00:00+00:00",
        "command": "python -m benchmarks --quick",
        "machine": {"cpu_model": "Test CPU", "cores": 2, "packages": {"blazeasgi": "0.1.0", "robyn": None}},
        "settings": {
            "threads": 1,
            "timeout": 8,
            "runs": 3,
            "duration": 10,
            "warmup": 3,
            "pinning": {"server": "0", "wrk": "1"},
            "quick": True,
        },
        "scenarios": {"hello": {"title": "Hello", "path": "/", "method": "GET"}},
        "servers": {
            k: {"server": s, "interface": i, "app": "m:app", "uvicorn_baseline": u, "granian_baseline": g}
            for k, (s, i, u, g) in servers.items()
        },
        "skipped_servers": {"robyn": "robyn is not installed (pip install robyn)"},
        "results": [
            run("blazeasgi-native", "hello", 100, 120_000, 900),
            run("blazeasgi-asgi", "hello", 100, 90_000),
            run("uvicorn-raw", "hello", 100, 60_000),
            run("granian-rsgi", "hello", 100, 80_000),
            run("blazeasgi-native", "hello", 1000, 100_000),
            run("uvicorn-raw", "hello", 1000, 50_000),
            {
                "server": "granian-rsgi",
                "scenario": "hello",
                "connections": 1000,
                "status": "failed",
                "error": "granian-rsgi exited with status 1",
            },
        ],
    }


def test_report_ratios_and_markdown() -> None:
    from benchmarks import report

    data = fake_results()
    assert report.groups(data) == [("hello", 100), ("hello", 1000)]
    assert report.ratio(data, ("hello", 100), "blazeasgi-native", "uvicorn") == "2.00x"
    assert report.ratio(data, ("hello", 100), "blazeasgi-native", "granian") == "1.50x"
    assert report.ratio(data, ("hello", 100), "uvicorn-raw", "uvicorn") == "1.00x"
    assert report.ratio(data, ("hello", 100), "blazeasgi-asgi", "granian") == wrk.NA  # granian-asgi not run
    assert report.ratio(data, ("hello", 1000), "blazeasgi-native", "granian") == wrk.NA  # it failed
    for record in data["results"]:
        if record["server"] == "blazeasgi-native" and (record["scenario"], record["connections"]) == (
            "hello",
            100,
        ):
            record["server_cpu"] = [0.97, 0.99, 0.98]
    table = report.group_table(data, ("hello", 100)).splitlines()
    assert table[2].split("|")[1].strip() == "blazeasgi-native"  # fastest first
    assert [c.strip() for c in table[2].split("|")[2:11]] == [
        "120,000", "17.17 MiB/s", "450 µs", "900 µs", "0", "0", "98%", "2.00x", "1.50x",
    ]  # fmt: skip
    assert table[3].split("|")[8].strip() == wrk.NA  # no CPU figure recorded for that one
    assert report._flag_errors([0, 0, 0]) == "0"
    assert report._flag_errors([3]) == "**3** (!)"  # dropped connections stand out
    # Errors in any run show, not only in the median run the other columns come from.
    for record in data["results"]:
        if record["server"] == "blazeasgi-asgi" and record["connections"] == 100:
            runs = [dict(record["median"]) for _ in range(3)]
            runs[2]["read_errors"] = 98
            record["runs"] = runs
    rows = report.group_table(data, ("hello", 100)).splitlines()
    row = next(line for line in rows if "blazeasgi-asgi" in line)
    assert row.split("|")[6].strip() == "0 / 0 / **98** (!)"
    text = report.render_markdown(data, ["chart.png"])
    assert text.startswith("# test run, 2026-01-01")
    assert "server on CPU 0, wrk on CPU 1" in text and "Quick mode" in text
    assert "![chart.png](chart.png)" in text
    assert "- robyn: robyn is not installed (pip install robyn)" in text
    assert "- granian-rsgi hello c=1000: granian-rsgi exited with status 1" in text
    assert any(line.startswith("| granian-rsgi") and "failed" in line for line in text.splitlines())


def blazeio_results(levels: tuple[int, ...]) -> dict[str, Any]:
    """A run of two servers on hello: granian-rsgi with three runs per cell whose
    figures peak in different runs, blazeasgi-native with the median run only."""
    mib = 1 << 20

    def wrk_run(requests: int, seconds: float, mib_per_s: int, mean_us: float) -> dict[str, Any]:
        return WrkResult(
            requests, seconds, mib_per_s * mib * int(seconds), latency_us={"mean": mean_us}
        ).to_dict()

    def cell(server: str, conns: int, **fields: Any) -> dict[str, Any]:
        return {"server": server, "scenario": "hello", "connections": conns, "status": "ok", **fields}

    data = fake_results()
    data["settings"]["duration"] = 10
    data["results"] = []
    for conns in levels:
        # req/s 11,111 / 12,000 / 10,000; requests 100,000 / 120,000 / 110,000;
        # MiB/s 20 / 40 / 30; mean latency 9 / 5 / 3 ms: each median from another run.
        runs = [wrk_run(100_000, 9.0, 20, 9000.0), wrk_run(120_000, 10.0, 40, 5000.0),
                wrk_run(110_000, 11.0, 30, 3000.0)]  # fmt: skip
        data["results"].append(cell("granian-rsgi", conns, median=runs[0], runs=runs))
        if conns == 3000:
            data["results"].append(cell("blazeasgi-native", conns, status="failed", error="died"))
        elif conns == 1000:
            data["results"].append(cell("blazeasgi-native", conns, median=wrk_run(250_000, 10.0, 80, 4000.0)))
    return data


def test_blazeio_tables_give_each_figure_its_median_over_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import report

    data = blazeio_results((1000, 3000))
    text = report.render_blazeio(data)
    tables = [block.splitlines() for block in text.split("\n\n")]
    assert [t[0] for t in tables[::2]] == [
        "**Requests per second**",
        '**Transfer rate, MiB/s (wrk\'s "MB")**',
        "**Average latency**",
        "**Requests served in 10 s (one run)**",
    ]

    def cells(table: list[str]) -> list[list[str]]:
        return [[c.strip() for c in line.split("|")[1:-1]] for line in table]

    rps, transfer, latency, served = (cells(t) for t in tables[1::2])
    # Columns in the run's server order (blazeasgi-native before granian-rsgi in "servers");
    # servers with no hello cell (blazeasgi-asgi, uvicorn-raw) get none.
    assert rps[0] == ["connections", "blazeasgi-native", "granian-rsgi"]
    assert rps[2:] == [["1,000", "25,000", "11,111"], ["3,000", "failed", "11,111"]]
    assert transfer[2:] == [["1,000", "80.00", "30.00"], ["3,000", "failed", "30.00"]]
    assert latency[2:] == [["1,000", "4.00 ms", "5.00 ms"], ["3,000", "failed", "5.00 ms"]]
    assert served[2:] == [["1,000", "250,000", "110,000"], ["3,000", "failed", "110,000"]]
    # A pipelined or HTTP/2 cell has no mean latency: a dash, not a zero.
    for record in data["results"]:
        for run in record.get("runs", []):
            run["latency_us"] = {}
    latency = cells(report.render_blazeio(data).split("\n\n")[5].splitlines())
    assert latency[2][2] == wrk.NA

    # results.md has the section only when the run covers the post's four levels.
    assert "Blazeio" not in report.render_markdown(blazeio_results((1000, 3000)))
    full = blazeio_results((1000, 3000, 5000, 10000))
    assert "## In the Blazeio post's shape" in report.render_markdown(full)
    path = _write(tmp_path / "r.json", full)
    assert report.main([str(path), "--blazeio"]) == 0
    out = capsys.readouterr().out
    assert "|      10,000 |" in out and "**Average latency**" in out
    assert not (tmp_path / "results.md").exists()  # printed, nothing rewritten
    with pytest.raises(SystemExit, match="no 'json' results"):
        report.main([str(path), "--blazeio", "json"])


def test_server_on_another_interpreter(tmp_path: Path) -> None:
    from benchmarks import machine, runner, servers

    robyn = servers.BY_NAME["robyn"]
    argv = robyn.argv(8000, python="/venv/bin/python")
    assert argv[0] == "/venv/bin/python" and argv[1:3] == ["-m", "benchmarks.apps.robyn_app"]
    assert servers.BY_NAME["granian-rsgi"].argv(8000)[0] == sys.executable
    # What is installed is asked of that interpreter, not of this one.
    assert servers.modules_available_in(sys.executable, ["json", "no_such_module_here"]) == {
        "json": True,
        "no_such_module_here": False,
    }
    other = tmp_path / "python"
    other.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')  # -S: no site-packages
    other.chmod(0o755)
    why = servers.BY_NAME["uvicorn-fastapi"].missing(str(other))
    assert why is not None and why.startswith(f"uvicorn is not installed in {other} (")
    assert robyn.missing(str(tmp_path / "nowhere")) is not None
    info = machine.interpreter_info(sys.executable, ("pytest", "no-such-dist"))
    assert info["packages"] == {"pytest": pytest.__version__, "no-such-dist": None}
    assert info["python"].endswith(sys.version.split()[0])
    assert machine.interpreter_info(str(tmp_path / "nowhere"))["python"] is None
    line = machine.describe({"packages": {}, "interpreters": {"robyn": {**info, "executable": "/v/python"}}})
    assert f"robyn ran on /v/python ({info['python']}, pytest {pytest.__version__})." in line
    assert runner.parse_pythons([f"robyn={sys.executable}"]) == {"robyn": sys.executable}
    for wrong in ("robyn", "nobody=/bin/sh", f"robyn={tmp_path / 'nowhere'}"):
        with pytest.raises(SystemExit):
            runner.parse_pythons([wrong])


def test_report_verification_table() -> None:
    from benchmarks import report

    data = fake_results()
    data["verification"] = {"a": {"json": [], "db": ["no Server header"]}, "b": {"json": []}}
    text = report.render_verification(data)
    assert text.splitlines()[2] == "| a      | PASS | FAIL |"
    assert text.splitlines()[3] == f"| b      | PASS | {wrk.NA}    |"
    assert "- a db: no Server header" in text
    assert "## Verification" in report.render_markdown(data)


def test_report_charts(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks import report

    data = fake_results()
    files = report.write_charts(data, tmp_path)
    assert files == ["rps_vs_connections.png", "throughput.png", "latency.png"]
    for name in files:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.main([str(_write(tmp_path / "r.json", data)), "--no-charts"]) == 0
    assert (tmp_path / "results.md").read_text().startswith("# test run")


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_runner_list_and_missing_wrk(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import runner

    assert runner.main(["--list"]) == 0
    assert "server   blazeasgi-native" in capsys.readouterr().out
    monkeypatch.setattr(wrk.shutil, "which", lambda name: None)
    assert runner.main(["--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt-get install -y wrk" in err


def test_runner_end_to_end_with_fake_wrk(
    fake_wrk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import runner, servers

    real_missing = servers.ServerSpec.missing
    monkeypatch.setattr(
        servers.ServerSpec,
        "missing",
        lambda self, python=None: "not here" if self.server == "robyn" else real_missing(self, python),
    )
    out = tmp_path / "results"
    argv = ["--quick", "--scenarios", "json", "--servers", "blazeasgi-native,robyn", "--output", str(out)]
    assert runner.main([*argv, "--no-charts", "--runs", "2"]) == 0
    text = capsys.readouterr().out
    assert "skip robyn: not here" in text
    assert "[1/1] blazeasgi-native json c=100 … 500 req/s, p99 2.50 ms, 6 socket errors, 5 timeouts" in text
    data = json.loads((out / "results.json").read_text())
    (record,) = data["results"]
    assert record["status"] == "ok" and record["rps_all"] == [500.0, 500.0]
    if os.path.exists("/proc/self/stat"):  # the server's CPU share, one figure per measured run
        assert len(record["server_cpu"]) == 2 and all(0 <= b < 2 for b in record["server_cpu"])
        assert "5 timeouts, server CPU " in text
    assert data["machine"]["cores"] and data["settings"]["quick"] is True
    assert "| blazeasgi-native |" in (out / "results.md").read_text()
    assert len(wrk_calls(fake_wrk)) == 3  # warm-up + 2 runs


def test_runner_starts_a_server_with_the_python_given(
    fake_wrk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import runner

    log = tmp_path / "python.log"
    other = tmp_path / "python"
    other.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {sys.executable} "$@"\n')
    other.chmod(0o755)
    out = tmp_path / "results"
    argv = ["--quick", "--scenarios", "json", "--servers", "blazeasgi-native", "--output", str(out)]
    assert runner.main([*argv, "--no-charts", "--python", f"blazeasgi-native={other}"]) == 0
    assert "-m blazeasgi benchmarks.apps.hello_native:app" in log.read_text()
    data = json.loads((out / "results.json").read_text())
    recorded = data["machine"]["interpreters"]["blazeasgi-native"]
    assert recorded["executable"] == str(other) and recorded["packages"]["blazeasgi"]
    assert f"blazeasgi-native ran on {other}" in (out / "results.md").read_text()


# -- TechEmpower: clamping, templates, the verifier -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", 2), ("0", 1), ("foo", 1), ("501", 500), ("", 1), (None, 1), ("-3", 1), ("500", 500), (b"7", 7)],
)
def test_clamp_queries(value: str | bytes | None, expected: int) -> None:
    pytest.importorskip("jinja2")
    from benchmarks.techempower.db import clamp_queries

    assert clamp_queries(value) == expected


def test_query_param() -> None:
    pytest.importorskip("jinja2")
    from benchmarks.techempower.db import query_param

    assert query_param("queries=5&x=1", "queries") == "5"
    assert query_param("x=1&count=", "count") == ""
    assert query_param("", "queries") is None


def test_rendered_fortunes_pass_the_verifier() -> None:
    pytest.importorskip("jinja2")
    from benchmarks.techempower.db import render_fortunes
    from benchmarks.techempower.postgres import FORTUNES, setup_sql
    from benchmarks.techempower.verify import check_fortunes

    page = render_fortunes(list(FORTUNES)).encode()
    assert check_fortunes(Reply(200, [], page)) == []
    assert "&lt;script&gt;" in page.decode() and "フレームワークのベンチマーク" in page.decode()
    sql = setup_sql()
    assert "(11, '<script>alert(\"This should not be displayed in a browser alert box.\");</script>')" in sql
    assert "(2, 'A computer scientist is someone who fixes things that aren''t broken.')" in sql
    assert "generate_series(1, 10000)" in sql


class FakeTechEmpower(BaseHTTPRequestHandler):
    """A tiny TechEmpower implementation whose ``faults`` break one rule each."""

    faults: set[str] = set()
    worlds: dict[int, int] = {}
    selects = 0
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        if "cached_date" in self.faults:
            return "Mon, 01 Jan 2024 00:00:00 GMT"
        return formatdate(timestamp, usegmt=True)

    def send(self, body: bytes, ctype: str) -> None:
        self.send_response_only(200)
        self.send_header("Date", self.date_time_string())
        if "no_server" not in self.faults:
            self.send_header("Server", "fake")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def count(self, query: dict[str, list[str]], name: str) -> int:
        from benchmarks.techempower.db import clamp_queries

        n = clamp_queries(query.get(name, [None])[0])
        return min(n, 10) if "no_clamp" in self.faults and n == 500 else n

    def do_GET(self) -> None:
        from benchmarks.techempower.db import render_fortunes
        from benchmarks.techempower.postgres import FORTUNES

        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        cls = type(self)
        json_type = "application/json"
        if url.path == "/plaintext":
            self.send(b"Hello, World!", "text/plain")
        elif url.path == "/json":
            self.send(json.dumps({"message": "Hello, World!"}).encode(), json_type)
        elif url.path == "/db":
            cls.selects += 1
            self.send(json.dumps({"id": 7, "randomNumber": cls.worlds[7]}).encode(), json_type)
        elif url.path in ("/queries", "/cached-queries"):
            n = self.count(query, "queries" if url.path == "/queries" else "count")
            cls.selects += 1 if "batched_select" in self.faults else n
            rows = [{"id": i, "randomNumber": cls.worlds[i]} for i in range(1, n + 1)]
            self.send(json.dumps(rows).encode(), json_type)
        elif url.path == "/updates":
            n = self.count(query, "queries")
            cls.selects += n
            rows = []
            for i in range(1, n + 1):
                new = cls.worlds[i] % 10000 + 1
                if "no_write" not in self.faults:
                    cls.worlds[i] = new
                rows.append({"id": i, "randomNumber": new})
            self.send(json.dumps(rows).encode(), json_type)
        elif url.path == "/fortunes":
            page = render_fortunes(list(FORTUNES))
            if "unescaped" in self.faults:
                page = page.replace("&lt;script&gt;", "<script>")
            ctype = "text/html" if "no_charset" in self.faults else "text/html; charset=utf-8"
            self.send(page.encode(), ctype)
        else:
            self.send_error(404)


@pytest.fixture
def fake_te() -> Iterator[tuple[int, type[FakeTechEmpower]]]:
    pytest.importorskip("jinja2")
    handler = type(
        "Handler", (FakeTechEmpower,), {"faults": set(), "worlds": {i: 5 for i in range(1, 10001)}}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _verifier(port: int, handler: type[FakeTechEmpower], date_wait: float = 0.0) -> Any:
    from benchmarks.techempower.verify import Verifier

    def reset() -> None:
        handler.selects = 0

    def stats() -> dict[str, tuple[int, int]]:
        return {"select": (handler.selects, handler.selects), "update": (1, 20)}

    return Verifier(port, read_worlds=lambda: dict(handler.worlds), stats=stats, reset_stats=reset,
                    date_wait=date_wait)  # fmt: skip


def test_verifier_passes_a_correct_server(fake_te: tuple[int, type[FakeTechEmpower]]) -> None:
    from benchmarks.techempower.verify import TESTS, describe

    port, handler = fake_te
    results = _verifier(port, handler, date_wait=1.1).run()
    assert results == {test: [] for test in TESTS}
    assert describe(results)[0] == "PASS plaintext"


@pytest.mark.parametrize(
    ("fault", "test", "problem"),
    [
        ("no_server", "json", "no Server header"),
        ("no_charset", "fortunes", "fortunes needs '; charset=utf-8'"),
        ("unescaped", "fortunes", "the <script> fortune arrived unescaped"),
        ("no_clamp", "queries", "/queries?queries=501: 10 rows, expected 500"),
        ("batched_select", "queries", "1 SELECT statement(s) for 20 row(s): one SELECT per row is required"),
        ("no_write", "updates", "20 returned row(s) not written to the database"),
    ],
)
def test_verifier_finds_each_broken_rule(
    fake_te: tuple[int, type[FakeTechEmpower]], fault: str, test: str, problem: str
) -> None:
    port, handler = fake_te
    handler.faults = {fault}
    results = _verifier(port, handler).run([test, "plaintext"])
    assert any(problem in p for p in results[test]), results[test]
    if fault != "no_server":
        assert results["plaintext"] == []


def test_verifier_cached_date_and_dead_server(fake_te: tuple[int, type[FakeTechEmpower]]) -> None:
    from benchmarks.techempower.verify import Verifier

    port, handler = fake_te
    handler.faults = {"cached_date"}
    results = _verifier(port, handler, date_wait=0.05).run(["plaintext"])
    assert results["plaintext"] == ["cached Date: 'Mon, 01 Jan 2024 00:00:00 GMT' again 0 s later"]
    dead = Verifier(benchprocess.free_port(), date_wait=0, timeout=2).run(["json"])
    assert dead["json"][0].startswith("request failed: ConnectionRefusedError")


def test_verifier_header_and_body_rules() -> None:
    from benchmarks.techempower import verify

    base = [("Server", "x"), ("Date", "d")]
    ok = Reply(
        200, [*base, ("Content-Type", "application/json; charset=UTF-8"), ("Content-Length", "2")], b"{}"
    )
    assert verify.check_headers(ok, "json") == []
    bad_len = Reply(200, [*base, ("Content-Type", "application/json"), ("Content-Length", "5")], b"{}")
    assert verify.check_headers(bad_len, "json") == ["Content-Length 5 but the body has 2 bytes"]
    chunked = Reply(200, [*base, ("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")], b"x")
    assert verify.check_headers(chunked, "plaintext") == []
    nothing = Reply(500, [], b"")
    assert verify.check_headers(nothing, "db") == [
        "status 500, expected 200", "empty body", "no Server header", "no Date header",
        "no Content-Type header", "neither Content-Length nor Transfer-Encoding",
    ]  # fmt: skip
    wrong = Reply(200, [*base, ("Content-Type", "text/html; charset=latin-1"), ("Content-Length", "1")], b"x")
    assert "expected text/html" in verify.check_headers(wrong, "fortunes")[0]
    assert verify.world_problem({"id": 1, "randomNumber": 10000}) is None
    assert verify.world_problem({"id": 1, "randomnumber": 5}) is None  # key case, as the toolset allows
    assert "not in 1..10000" in str(verify.world_problem({"id": 0, "randomNumber": 5}))
    assert "not an integer" in str(verify.world_problem({"id": "1", "randomNumber": 5}))
    assert "expected keys" in str(verify.world_problem({"id": 1}))
    assert "expected an object" in str(verify.world_problem([1]))
    assert verify.check_world_list(Reply(200, [], b'{"id": 1}'), 1) == [
        'expected a JSON array, got {"id": 1}'
    ]
    assert verify.check_db(Reply(200, [], b"[]")) == ["/db: expected an object, got []"]
    assert verify.check_json(Reply(200, [], b'{"message": "Hello, World"}'))[0].startswith("JSON")
    assert verify.check_plaintext(Reply(200, [], b"Hello, World!\n"))[0].startswith("body")
    assert verify.check_fortunes(Reply(200, [], b"\xff")) == ["body is not UTF-8"]
    assert verify.query_path("cached-queries", None) == "/cached-queries"
    assert verify.query_path("updates", "foo") == "/updates?queries=foo"


def test_techempower_levels() -> None:
    pytest.importorskip("jinja2")
    from benchmarks.techempower.run import levels

    full = levels(["plaintext", "json", "queries", "cached-queries"], quick=False)
    assert [lv.scenario.name for lv in full] == [
        "plaintext", "json", "queries-1", "queries-5", "queries-20",
        "cached-queries-1", "cached-queries-20", "cached-queries-100",
    ]  # fmt: skip
    assert full[0].scenario.pipeline == 16 and full[0].scenario.connections == (256, 1024)
    assert full[2].scenario.path == "/queries?queries=1"
    assert [lv.scenario.name for lv in levels(["updates"], quick=True)] == ["updates-20"]


def test_sigterm_becomes_keyboard_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), benchprocess.sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) == before

    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "_bench", interrupted)
    assert bench.main(["m:app"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_floor_reference_serves_the_hello_bytes_and_pipelines() -> None:
    # The floor row of a benchmark table is only meaningful if it sends what the
    # hello scenario checks, once per request, pipelined requests included.
    from benchmarks.scenarios import check_hello
    from benchmarks.servers import BY_NAME

    spec = BY_NAME["uvloop-floor"]
    assert spec.routes == {"hello", "hello-close", "hello-http10"}
    port = benchprocess.free_port()
    with benchprocess.ServerProcess(spec.name, spec.argv(port), port, cwd=ROOT) as server:
        reply = server.wait_ready("/", timeout=20)
        assert check_hello(reply) is None
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            sock.sendall(request * 3 + request[:10])
            sock.sendall(request[10:])
            data = b""
            while data.count(b"HTTP/1.1 200 OK") < 4:
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
        assert data.count(b"Hello, world!") == 4
        # The short-connection scenarios: answered, then closed by the server.
        for request in (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(65536):  # until the server's FIN
                    data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
            assert data.endswith(b"\r\n\r\nHello, world!")
            assert b"\r\nconnection: close\r\n" in data


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_server_cpu_counts_the_whole_process_tree() -> None:
    # Granian's and the supervisor's workers are child processes: a parent that only
    # waits on a spinning child shows the child's CPU, live and after it exited.
    import subprocess
    import time

    from benchmarks.machine import process_tree_cpu_s

    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\n"
    code = f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', {spin!r}]); time.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)
        start = process_tree_cpu_s(parent.pid)
        time.sleep(0.5)
        live = process_tree_cpu_s(parent.pid)
        assert start is not None and live is not None
        assert live - start > 0.05  # the parent sleeps: this is the child spinning
        deadline = time.monotonic() + 30
        while (process_tree_cpu_s(parent.pid) or 0) < 1.0 and time.monotonic() < deadline:
            time.sleep(0.1)  # the child's CPU stays counted after it exits
        assert (process_tree_cpu_s(parent.pid) or 0) >= 1.0
    finally:
        parent.kill()
        parent.wait()
    assert process_tree_cpu_s(parent.pid) is None  # gone: nothing to read


def test_micro_app_alone_runs_the_app_without_a_server() -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.micro", "asgi", "--app-alone"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    # 1,000 warm-up + 100,000 measured requests, each a start and a body message.
    assert "asgi app alone:" in out.stdout and "(202000 messages sent)" in out.stdout
    native = subprocess.run(
        [sys.executable, "-m", "benchmarks.micro", "native", "--app-alone"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert native.returncode != 0 and "needs an ASGI kind" in native.stderr


def test_micro_each_answers_every_request_on_the_task_path() -> None:
    """--each runs the loop until each response is out, so a Task per request is
    measured with its loop passes (the pipelined default would outrun it)."""
    import os
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", "import asyncio, benchmarks.micro as m; asyncio.run(m.run_each('asgi', 300))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "BLAZEASGI_TASKS": "task"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "asgi --each:" in out.stdout


# -- a new connection per request -----------------------------------------------------------------


def test_bench_close_sends_connection_close(fake_wrk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvicorn")
    argv = ["benchmarks.apps.hello_asgi:app", "-c", "8", "-d", "1", "--warmup", "0", "--app-dir", str(ROOT)]
    assert bench.main([*argv, "--close"]) == 0
    assert "a new connection per request" in capsys.readouterr().out
    calls = wrk_calls(fake_wrk)
    assert calls and all('wrk.headers["Connection"] = "close"' in c["script"] for c in calls)


@pytest.mark.parametrize("name", ["hello-close", "hello-http10"])
def test_new_connection_scenarios_open_a_connection_per_request(serve: Any, name: str) -> None:
    """Real wrk with each scenario's script: every request arrives on its own connection.

    Counted by the engine's ConnectionInfo, one per connection (HTTPConnection may be
    compiled, so it is not patched to count).
    """
    wrk_binary = pytest.importorskip("shutil").which("wrk")
    if wrk_binary is None:
        pytest.skip("wrk is not installed")
    from benchmarks.scenarios import BY_NAME

    seen: list[tuple[str, Any]] = []  # the objects stay alive: their ids stay distinct

    def dispatch(ex: Any) -> None:
        seen.append((ex.http_version, ex.info))
        ex.respond(200, b"", b"ok")

    srv = serve(lambda scope, receive, send: None, lifespan="off")
    srv.state.dispatch = dispatch
    result = wrk.run_wrk(srv.url("/"), 4, 1, BY_NAME[name].script(), wrk=wrk_binary)
    assert result.requests > 10 and result.socket_errors == 0
    versions = {version for version, _ in seen}
    assert versions == ({"1.0"} if name == "hello-http10" else {"1.1"})
    assert len({id(info) for _, info in seen}) == len(seen)  # one connection per request


def test_browser_scenario_sends_a_browsers_header_fields(serve: Any) -> None:
    """Real wrk with the hello-browser script: every request carries the 15 fields a
    browser adds to Host, names and values as listed (the parser's cost is the point)."""
    wrk_binary = pytest.importorskip("shutil").which("wrk")
    if wrk_binary is None:
        pytest.skip("wrk is not installed")
    from benchmarks.apps.common import BROWSER_HEADERS
    from benchmarks.scenarios import BY_NAME
    from benchmarks.servers import BY_NAME as SERVERS

    scenario = BY_NAME["hello-browser"]
    assert scenario.route_name == "hello" and scenario.route_name in SERVERS["blazeasgi-native"].routes
    seen: list[list[tuple[bytes, bytes]]] = []

    def dispatch(ex: Any) -> None:
        seen.append(ex.headers)
        ex.respond(200, b"", b"ok")

    srv = serve(lambda scope, receive, send: None, lifespan="off")
    srv.state.dispatch = dispatch
    result = wrk.run_wrk(srv.url("/"), 4, 1, scenario.script(), wrk=wrk_binary)
    assert result.requests > 10 and result.socket_errors == 0
    expected = {(name.lower().encode(), value.encode()) for name, value in BROWSER_HEADERS}
    assert len(expected) == 15
    for headers in seen:
        fields = {(name.lower(), value) for name, value in headers}
        assert expected <= fields
        assert len(headers) == 16  # Host and these, nothing else


# -- HTTP/2: h2load output, commands, cells, a real run -------------------------------------------

#: h2load 1.52 (Debian 12), timed run (-D 1 -c 2 -m 10) against blazeasgi native, as printed.
H2LOAD_TIMED = """starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 0s of warm-up time \
and 1s of main duration for measurements.
Warm-up started for thread #0.
progress: 50% of clients started
progress: 100% of clients started
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Application protocol: h2c
Process Request Failure:1
Process Request Failure:2
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 1.00s, 7680.00 req/s, 2.10MB/s
requests: 7680 total, 7680 started, 7680 done, 7680 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 7680 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 2.10MB (2204290) total, 1.81MB (1896960) headers (space savings 13.64%), 97.50KB (99840) data
                     min         max         mean         sd        +/- sd
time for request:      161us      8.17ms       714us      1.18ms    89.44%
time for connect:       67us        97us        82us        21us   100.00%
time to 1st byte:     7.76ms      7.93ms      7.84ms       118us   100.00%
req/s           :   13694.27    13716.21    13705.24       15.51   100.00%
"""

#: -n 20 against a path the app does not serve: every answer a 404.
H2LOAD_404 = """starting benchmark...
spawning thread #0: 2 total client(s). 20 total requests
Application protocol: h2c
progress: 100% done

finished in 5.65ms, 3540.45 req/s, 421.12KB/s
requests: 20 total, 20 started, 20 done, 0 succeeded, 20 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 20 4xx, 0 5xx
traffic: 2.38KB (2436) total, 1.58KB (1620) headers (space savings 26.36%), 180B (180) data
                     min         max         mean         sd        +/- sd
time for request:      574us       700us       642us        56us    70.00%
"""

#: -n 20 against a closed port: no connection, h2load still exits 0.
H2LOAD_REFUSED = """starting benchmark...
spawning thread #0: 2 total client(s). 20 total requests

finished in 231us, 0.00 req/s, 0B/s
requests: 20 total, 0 started, 0 done, 0 succeeded, 20 failed, 20 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 0B (0) total, 0B (0) headers (space savings 0.00%), 0B (0) data
                     min         max         mean         sd        +/- sd
time for request:        0us         0us         0us         0us     0.00%
"""

H2LOAD_PATH = shutil.which("h2load")


def test_parse_h2load_output_timed_run() -> None:
    from benchmarks.h2load import parse_h2load_output

    result = parse_h2load_output(H2LOAD_TIMED)
    assert (result.duration_s, result.rps, result.done, result.errors) == (1.0, 7680.0, 7680, 0)
    assert result.protocol == "h2c" and result.bytes == 2204290 and result.started == 7680
    assert result.statuses == {"2xx": 7680, "3xx": 0, "4xx": 0, "5xx": 0}
    assert result.request_time_us == {"min": 161.0, "max": 8170.0, "mean": 714.0}
    record = result.to_dict()
    # The keys the tables and charts read for a wrk run, and no latency percentiles.
    assert record["rps"] == 7680.0 and record["transfer_per_s"] == 2204290.0
    assert record["latency_us"] == {} and record["errors"] == 0 and record["timeouts"] == 0


def test_parse_h2load_output_counts_non_2xx_and_unsent_requests_as_errors() -> None:
    from benchmarks.h2load import parse_h2load_output

    not_found = parse_h2load_output(H2LOAD_404)
    assert not_found.duration_s == pytest.approx(0.00565) and not_found.rps == 3540.45
    assert not_found.errors == 20 and not_found.to_dict()["status_errors"] == 20
    refused = parse_h2load_output(H2LOAD_REFUSED)
    assert refused.protocol is None and refused.duration_s == pytest.approx(231e-6)
    assert refused.errors == 20 and refused.to_dict()["h2load"]["errored"] == 20
    with pytest.raises(BenchError, match="h2load printed no summary"):
        parse_h2load_output("starting benchmark...\nconnect: Connection refused\n")


def test_h2load_command_and_median() -> None:
    from benchmarks.h2load import h2load_command, median_h2load, parse_h2load_output

    timed = h2load_command("h2load", "http://x/", 100, 10, duration=5, prefix=["taskset", "-c", "1"])
    assert timed == [
        "taskset",
        "-c",
        "1",
        "h2load",
        "-t",
        "1",
        "-c",
        "100",
        "-m",
        "10",
        "-D",
        "5",
        "http://x/",
    ]
    post = h2load_command(
        "h2load", "http://x/echo", 2, 1, requests=50, data_path="/tmp/b", headers=[("Content-Type", "a/b")]
    )
    assert post[-7:] == ["-n", "50", "-d", "/tmp/b", "-H", "Content-Type: a/b", "http://x/echo"]
    with pytest.raises(ValueError):
        h2load_command("h2load", "http://x/", 1, 1)
    runs = [parse_h2load_output(t) for t in (H2LOAD_TIMED, H2LOAD_404, H2LOAD_REFUSED)]
    assert median_h2load(runs).rps == 3540.45


def test_http2_cells_and_server_commands() -> None:
    from benchmarks.runner import plan_cells
    from benchmarks.scenarios import BY_NAME as SC
    from benchmarks.servers import BY_NAME as SV

    h2 = [SC["h2-hello-m1"], SC["h2-hello-m100"], SC["h2-download"], SC["h2-echo"]]
    servers = [SV["blazeasgi-native"], SV["blazeasgi-starlette"], SV["uvicorn-raw"], SV["granian-rsgi"]]
    cells = [(s.name, c, v.name) for s, c, v in plan_cells(h2, servers, quick=False)]
    assert ("h2-hello-m100", 1000, "granian-rsgi") in cells
    assert not [c for c in cells if c[2] == "blazeasgi-starlette"]  # not in the HTTP/2 set
    assert len(cells) == 3 * (2 + 2 + 1 + 1)
    # Quick mode: only 10 streams at 100 connections; a server whose HTTP/2 is missing is left out.
    quick = plan_cells([*h2, SC["h2-hello-m10"]], servers, quick=True, http2_servers={"uvicorn-raw"})
    assert [(s.name, c, v.name) for s, c, v in quick] == [("h2-hello-m10", 100, "uvicorn-raw")]
    assert SC["h2-hello-m10"].quick_requests and not SC["hello"].http2
    uvicorn = SV["uvicorn-raw"].argv(1, http2=True)
    assert uvicorn[uvicorn.index("--http") + 1] == "zttp" and "--http2" in uvicorn
    granian = SV["granian-asgi"].argv(1, http2=True)
    assert granian[granian.index("--http") + 1] == "auto"
    assert SV["granian-asgi"].argv(1) == SV["granian-asgi"].argv(1, http2=False)  # HTTP/1.1 unchanged
    assert "--http2" in SV["blazeasgi-fastapi"].argv(1, http2=True)
    assert SV["hypercorn-raw"].argv(1, http2=True) == SV["hypercorn-raw"].argv(1)
    assert SV["blazeasgi-starlette"].missing_http2() == "blazeasgi-starlette is not in the HTTP/2 set"


def test_report_http2_table_counts_errors() -> None:
    from benchmarks import report
    from benchmarks.h2load import parse_h2load_output

    data = fake_results()
    data["scenarios"]["h2-hello-m10"] = {
        "title": "HTTP/2 hello", "path": "/", "method": "GET", "protocol": "h2c", "streams": 10,
    }  # fmt: skip
    data["results"] += [
        {"server": "blazeasgi-native", "scenario": "h2-hello-m10", "connections": 100, "status": "ok",
         "median": parse_h2load_output(H2LOAD_404).to_dict()},
        {"server": "uvicorn-raw", "scenario": "h2-hello-m10", "connections": 100, "status": "ok",
         "median": parse_h2load_output(H2LOAD_TIMED).to_dict()},
    ]  # fmt: skip
    group = ("h2-hello-m10", 100)
    assert report.title(data, group) == "HTTP/2 hello (GET /), 100 connections, 10 streams each"
    table = report.group_table(data, group).splitlines()
    assert [c.strip() for c in table[0].split("|")[1:7]] == [
        "server",
        "req/s",
        "transfer/s",
        "p50",
        "p99",
        "errors",
    ]
    assert [c.strip() for c in table[3].split("|")[1:7]] == [
        "blazeasgi-native", "3,540", "421.05 KiB/s", wrk.NA, wrk.NA, "**20** (!)",
    ]  # fmt: skip
    assert report.ratio(data, group, "blazeasgi-native", "uvicorn") == "0.46x"
    text = report.render_markdown(data)
    assert "h2load -t1 instead of wrk" in text and "HTTP/2 tables" in text
    assert "h2load" not in report.render_markdown(fake_results())  # HTTP/1.1 runs read as before


def test_runner_drops_http2_without_h2load(
    fake_wrk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import runner

    real = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "h2load" else real(name, *a, **k)
    )
    assert runner.main(["--quick", "--scenarios", "h2-hello-m10", "--servers", "blazeasgi-native"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt-get install -y nghttp2-client" in err
    out = tmp_path / "results"
    argv = ["--quick", "--scenarios", "json,h2-hello-m10", "--servers", "blazeasgi-native"]
    assert runner.main([*argv, "--output", str(out), "--no-charts"]) == 0
    assert "skip the HTTP/2 scenarios: h2load" in capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    assert [r["scenario"] for r in data["results"]] == ["json"]
    assert "h2-hello-m10" in data["skipped_scenarios"]


@pytest.mark.skipif(H2LOAD_PATH is None, reason="h2load is not installed (apt-get install nghttp2-client)")
def test_runner_http2_tiny_real_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """blazeasgi native under h2load for real: hello with 10 streams, the 1 MiB download
    and the POST echo, each answer checked over HTTP/2 first."""
    pytest.importorskip("zttp")
    pytest.importorskip("h2")
    from benchmarks import runner

    out = tmp_path / "results"
    argv = ["--quick", "--scenarios", "h2-hello-m10,h2-download,h2-echo", "--servers", "blazeasgi-native"]
    assert runner.main([*argv, "--connections", "4", "--output", str(out), "--no-charts", "--no-pin"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["machine"]["h2load"].startswith("h2load nghttp2/")
    by_scenario = {r["scenario"]: r for r in data["results"]}
    assert set(by_scenario) == {"h2-hello-m10", "h2-download", "h2-echo"}
    for name, requests in (("h2-hello-m10", 5000), ("h2-download", 32), ("h2-echo", 2000)):
        record = by_scenario[name]
        assert record["status"] == "ok", record.get("error")
        assert record["protocol"] == "h2c" and record["server_header"] == "blazeasgi"
        stats = record["median"]["h2load"]
        assert stats["protocol"] == "h2c" and stats["status_codes"]["2xx"] == requests == stats["total"]
        assert record["median"]["errors"] == 0
    assert by_scenario["h2-download"]["median"]["bytes"] > 32 * (1 << 20)
    assert "100 connections" not in (out / "results.md").read_text()
    assert "4 connections, 10 streams each" in (out / "results.md").read_text()
