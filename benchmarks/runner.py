"""``python -m benchmarks``: every server on every scenario, same machine, same wrk.

For each (scenario, connections, server) cell: start the server pinned to the first
core (wrk on the second) with one worker and access logs off, wait until it answers,
check the answer (same payload everywhere), warm up, run wrk N times and keep the
median run. The server is stopped after every cell, whatever happens.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from blazeasgi.benchprocess import (
    ServerProcess,
    free_port,
    http_request,
    pinning,
    raise_fd_limit,
    sigterm_as_interrupt,
)
from blazeasgi.wrk import BenchError, find_wrk, fmt_latency, fmt_rps, median_result, run_wrk

from . import report
from .h2load import H2loadResult, find_h2load, h2c_request, median_h2load, run_h2load
from .machine import ROOT, interpreter_info, machine_info, process_tree_cpu_s
from .scenarios import BY_NAME as SCENARIOS_BY_NAME
from .scenarios import SCENARIOS, Scenario
from .servers import BY_NAME as SERVERS_BY_NAME
from .servers import SERVERS, ServerSpec

RESULTS = Path(__file__).resolve().parent / "results"

QUICK = {"duration": 2, "warmup": 1, "runs": 1}
FULL = {"duration": 10, "warmup": 3, "runs": 3}
STARTUP_ESTIMATE_S = 1.5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Side-by-side HTTP benchmarks of blazeasgi and its peers (wrk, one core each).",
    )
    p.add_argument(
        "--quick", action="store_true", help="short smoke run: 2 s runs, 1 run, lowest load levels"
    )
    p.add_argument(
        "--scenarios",
        help=f"comma-separated scenarios (default: all): {', '.join(s.name for s in SCENARIOS)}",
    )
    p.add_argument(
        "--servers",
        help="comma-separated servers, or 'all' (default: the default set): "
        + ", ".join(s.name + ("" if s.default else "*") for s in SERVERS)
        + " (* = not in the default set)",
    )
    p.add_argument(
        "--connections", help="comma-separated connection counts, replacing every scenario's own levels"
    )
    p.add_argument("--duration", type=int, help="seconds per measured run (default 10, quick 2)")
    p.add_argument("--warmup", type=int, help="seconds of unmeasured load first (default 3, quick 1)")
    p.add_argument("--runs", type=int, help="measured runs per cell; the median is kept (default 3, quick 1)")
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="SERVER=PATH",
        help="run SERVER with another interpreter (its own venv), e.g. robyn=/venvs/robyn/bin/python; "
        "repeatable",
    )
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: wrk has one core)")
    p.add_argument("--timeout", type=int, default=8, help="wrk request timeout in seconds (default 8)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server and wrk to separate cores")
    p.add_argument(
        "--output",
        type=Path,
        help="results directory (default benchmarks/results/<timestamp>, quick-<timestamp>)",
    )
    p.add_argument(
        "--no-latest",
        action="store_true",
        help="do not copy the results to results/latest (--quick never does)",
    )
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    p.add_argument("--list", action="store_true", help="list scenarios and servers, then exit")
    return p


def _pick(names: str | None, known: dict[str, Any], default: list[Any], what: str) -> list[Any]:
    if not names:
        return default
    if names == "all":
        return list(known.values())
    picked = []
    for name in (n.strip() for n in names.split(",")):
        if name not in known:
            raise SystemExit(f"unknown {what} {name!r}; choose from: {', '.join(known)}")
        picked.append(known[name])
    return picked


def parse_pythons(values: Sequence[str]) -> dict[str, str]:
    """``--python SERVER=PATH`` values as {server: interpreter}; SystemExit when one is wrong."""
    pythons: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not path:
            raise SystemExit(f"--python {value!r}: expected SERVER=PATH")
        if name not in SERVERS_BY_NAME:
            raise SystemExit(
                f"--python {value!r}: unknown server {name!r}; choose from: {', '.join(SERVERS_BY_NAME)}"
            )
        found = shutil.which(path)
        if found is None:
            raise SystemExit(f"--python {value!r}: {path} is not an executable")
        pythons[name] = found
    return pythons


def plan_cells(
    scenarios: Sequence[Scenario],
    servers: Sequence[ServerSpec],
    quick: bool,
    connections: Sequence[int] | None = None,
    http2_servers: Collection[str] | None = None,
) -> list[tuple[Scenario, int, ServerSpec]]:
    """Cells ordered by scenario, then load level, then server: comparable runs close in time.

    HTTP/2 scenarios go to the servers named in ``http2_servers`` (default: every server
    of the HTTP/2 set).
    """
    cells = []
    for scenario in scenarios:
        levels = connections or (scenario.quick_connections if quick else scenario.connections)
        for conns in levels:
            for server in servers:
                if scenario.route_name not in server.routes:
                    continue
                if scenario.http2 and not (
                    server.name in http2_servers if http2_servers is not None else server.http2
                ):
                    continue
                cells.append((scenario, conns, server))
    return cells


#: Pause after each wrk process. Opening 1,000 connections in the same millisecond
#: as the previous wrk's 1,000 close stalled a few of the new ones for 1-3 s on every
#: Python server measured (uvicorn too; FastAPI at c=1000: p99 3.4 s back to back,
#: 77 ms after a 1 s pause, same req/s): an artefact of the harness, not of load.
SETTLE_S = 1.0


def run_cell(
    scenario: Scenario,
    conns: int,
    server: ServerSpec,
    settings: dict[str, Any],
    server_cpu: list[str],
    wrk_cpu: list[str],
    wrk: str,
    python: str | None = None,
) -> dict[str, Any]:
    """One cell; never raises BenchError (a failure is recorded in the result).

    ``wrk`` is the load generator's path: h2load for an HTTP/2 scenario; ``python``: the
    server's interpreter when not this one.
    """
    record: dict[str, Any] = {"server": server.name, "scenario": scenario.name, "connections": conns}
    if scenario.http2:
        record.update(protocol=scenario.protocol, streams=scenario.streams)
    if hasattr(os, "getloadavg"):  # a noisy machine shows here, cell by cell
        record["load_average"] = round(os.getloadavg()[0], 2)
    port = free_port()
    proc = ServerProcess(
        server.name,
        server.argv(port, http2=scenario.http2, python=python),
        port,
        env={**_base_env(), **server.process_env(port)},
        cwd=ROOT,
        prefix=server_cpu,
        stop_signal=server.stop_signal,
    )
    t0 = time.monotonic()
    try:
        with proc:
            proc.wait_ready(scenario.path if scenario.method == "GET" else "/", timeout=30)
            if scenario.http2:
                headers = dict(scenario.request_headers()) or None
            else:
                headers = {"Content-Type": scenario.content_type} if scenario.content_type else None
            ask = h2c_request if scenario.http2 else http_request
            reply = ask(port, scenario.path, scenario.method, scenario.body, headers)
            problem = scenario.check(reply)
            if problem:
                raise BenchError(f"wrong answer to {scenario.method} {scenario.path}: {problem}")
            record["server_header"] = reply.header("server")
            url = f"http://127.0.0.1:{port}{scenario.path}"
            if scenario.http2:
                record.update(_load_h2(scenario, conns, url, settings, proc, wrk_cpu, wrk))
                if proc.proc is not None and proc.proc.poll() is not None:
                    raise BenchError(f"{server.name} died under load: {proc.output()}")
                record["elapsed_s"] = round(time.monotonic() - t0, 1)
                return record
            script = scenario.script()
            load = {
                "wrk": wrk,
                "threads": settings["threads"],
                "timeout": settings["timeout"],
                "prefix": wrk_cpu,
            }
            if settings["warmup"]:
                run_wrk(url, conns, settings["warmup"], script, **load)
                time.sleep(SETTLE_S)
            runs, busy = [], []
            pid = proc.proc.pid if proc.proc is not None else None
            for _ in range(settings["runs"]):
                before = process_tree_cpu_s(pid) if pid else None
                started = time.monotonic()
                runs.append(run_wrk(url, conns, settings["duration"], script, **load))
                after = process_tree_cpu_s(pid) if pid else None
                if before is not None and after is not None:
                    # Share of one core the server used while loaded (wrk's start-up
                    # and reporting included, so slightly under the true figure).
                    busy.append(round((after - before) / (time.monotonic() - started), 3))
                time.sleep(SETTLE_S)
            if busy:
                record["server_cpu"] = busy
            if scenario.pipeline > 1:
                # wrk's latency figures are invalid with pipelining (its coordinated-omission
                # correction assumes one request per round trip): not reported.
                runs = [dataclasses.replace(r, latency_us={}) for r in runs]
            if proc.proc is not None and proc.proc.poll() is not None:
                raise BenchError(f"{server.name} died under load: {proc.output()}")
    except BenchError as exc:
        record.update(status="failed", error=str(exc), elapsed_s=round(time.monotonic() - t0, 1))
        return record
    except OSError as exc:
        record.update(
            status="failed", error=f"{type(exc).__name__}: {exc}", elapsed_s=round(time.monotonic() - t0, 1)
        )
        return record
    best = median_result(runs)
    record.update(
        status="ok",
        median=best.to_dict(),
        runs=[r.to_dict() for r in runs],
        rps_all=[round(r.rps, 1) for r in runs],
        elapsed_s=round(time.monotonic() - t0, 1),
    )
    return record


def _load_h2(
    scenario: Scenario,
    conns: int,
    url: str,
    settings: dict[str, Any],
    proc: ServerProcess,
    h2load_cpu: list[str],
    h2load: str,
) -> dict[str, Any]:
    """An HTTP/2 cell's load: h2load, as wrk for HTTP/1.1 (warm-up, N timed runs, the
    median kept, the server's CPU share per run); quick mode: one run of
    ``scenario.quick_requests`` requests, no warm-up."""

    def once(duration: int | None, requests: int | None = None) -> H2loadResult:
        return run_h2load(
            url, conns, scenario.streams, duration=duration, requests=requests, body=scenario.body,
            headers=scenario.request_headers(), h2load=h2load, threads=settings["threads"],
            prefix=h2load_cpu,
        )  # fmt: skip

    fixed = settings["quick"] and scenario.quick_requests > 0
    if settings["warmup"] and not fixed:
        once(settings["warmup"])
        time.sleep(SETTLE_S)
    runs: list[H2loadResult] = []
    busy = []
    pid = proc.proc.pid if proc.proc is not None else None
    for _ in range(1 if fixed else settings["runs"]):
        before = process_tree_cpu_s(pid) if pid else None
        started = time.monotonic()
        # h2load wants at least one request per connection.
        runs.append(once(None, max(scenario.quick_requests, conns)) if fixed else once(settings["duration"]))
        after = process_tree_cpu_s(pid) if pid else None
        if before is not None and after is not None:
            busy.append(round((after - before) / (time.monotonic() - started), 3))
        if not fixed:
            time.sleep(SETTLE_S)
    best = median_h2load(runs)
    record: dict[str, Any] = {
        "status": "ok",
        "median": best.to_dict(),
        "runs": [r.to_dict() for r in runs],
        "rps_all": [round(r.rps, 1) for r in runs],
    }
    if busy:
        record["server_cpu"] = busy
    return record


def cpu_note(record: dict[str, Any]) -> str:
    """ ", server CPU 97%": the median share of its core the server used under load."""
    busy = record.get("server_cpu")
    return f", server CPU {statistics.median(busy):.0%}" if busy else ""


def _scenario_info(scenario: Scenario) -> dict[str, Any]:
    info: dict[str, Any] = {"title": scenario.title, "path": scenario.path, "method": scenario.method}
    if scenario.http2:
        info.update(protocol=scenario.protocol, streams=scenario.streams)
    return info


def h2load_version(h2load: str) -> str | None:
    """ "h2load nghttp2/1.52.0", as recorded with the machine."""
    try:
        out = subprocess.run([h2load, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def write_results(data: dict[str, Any], out: Path, latest: bool, charts: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    written = [out / "results.json"]
    chart_files: list[str] = []
    if charts:
        try:
            chart_files = report.write_charts(data, out)
        except ImportError:
            print("note: matplotlib is not installed (pip install matplotlib): no charts")
    (out / "results.md").write_text(report.render_markdown(data, chart_files))
    written += [out / "results.md", *(out / c for c in chart_files)]
    if latest:
        dest = out.parent / "latest"
        if dest.resolve() != out.resolve():
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(out, dest)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    with sigterm_as_interrupt():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            print(f"scenario {s.name:<10} {s.title}; connections {', '.join(map(str, s.connections))}")
        for srv in SERVERS:
            note = "" if srv.default else " (not in the default set)"
            print(f"server   {srv.name:<20} {srv.server} {srv.interface}, app {srv.target}{note}")
        return 0
    mode = QUICK if args.quick else FULL
    settings = {
        "quick": args.quick,
        "duration": args.duration or mode["duration"],
        "warmup": mode["warmup"] if args.warmup is None else args.warmup,
        "runs": args.runs or mode["runs"],
        "threads": args.threads,
        "timeout": args.timeout,
    }
    scenarios = _pick(args.scenarios, SCENARIOS_BY_NAME, SCENARIOS, "scenario")
    servers = _pick(args.servers, SERVERS_BY_NAME, [s for s in SERVERS if s.default], "server")
    connections = [int(c) for c in args.connections.split(",")] if args.connections else None
    pythons = parse_pythons(args.python)
    # wrk for HTTP/1.1, h2load for HTTP/2. A missing wrk stops the run; a missing h2load
    # only drops the HTTP/2 scenarios, unless they are all that was asked for.
    tools: dict[str, str] = {}
    skipped_scenarios: dict[str, str] = {}
    try:
        if any(not s.http2 for s in scenarios):
            tools["http/1.1"] = find_wrk()
        if any(s.http2 for s in scenarios):
            try:
                tools["h2c"] = find_h2load()
            except BenchError as exc:
                if "http/1.1" not in tools:
                    raise
                for s in scenarios:
                    if s.http2:
                        skipped_scenarios[s.name] = str(exc)
                scenarios = [s for s in scenarios if not s.http2]
                print(f"skip the HTTP/2 scenarios: {exc}")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    skipped: dict[str, str] = {}
    available = []
    for server in servers:
        why = server.missing(pythons.get(server.name))
        if why:
            skipped[server.name] = why
            print(f"skip {server.name}: {why}")
        else:
            available.append(server)
    http2_servers = set()
    if any(s.http2 for s in scenarios):
        for server in available:
            why = server.missing_http2()
            if why is None:
                http2_servers.add(server.name)
            elif server.http2:
                skipped[f"{server.name} (HTTP/2)"] = why
                print(f"skip {server.name} on HTTP/2: {why}")
    cells = plan_cells(scenarios, available, args.quick, connections, http2_servers)
    if not cells:
        print("error: nothing to run (no installed server serves the chosen scenarios)", file=sys.stderr)
        return 2

    fd_limit = raise_fd_limit(max(c for _, c, _ in cells) * 2 + 1024)
    server_cpu, wrk_cpu = pinning(not args.no_pin)
    settings["pinning"] = (
        {"server": server_cpu[-1], "wrk": wrk_cpu[-1]}
        if server_cpu
        else "none (fewer than 2 cores or no taskset)"
    )
    settings["fd_limit"] = fd_limit
    per_cell = settings["warmup"] + settings["duration"] * settings["runs"] + STARTUP_ESTIMATE_S
    print(
        f"{len(cells)} runs ({len(available)} servers), {settings['runs']} x {settings['duration']} s "
        f"after {settings['warmup']} s warm-up each: about {len(cells) * per_cell / 60:.0f} min. "
        f"Pinning: {settings['pinning']}."
    )
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    data: dict[str, Any] = {
        "suite": "main",
        "created": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_info(),
        "settings": settings,
        "scenarios": {s.name: _scenario_info(s) for s in scenarios},
        "servers": {
            s.name: {
                "server": s.server,
                "interface": s.interface,
                "app": s.target,
                "uvicorn_baseline": s.uvicorn_baseline,
                "granian_baseline": s.granian_baseline,
            }
            for s in servers
        },
        "skipped_servers": skipped,
        "results": [],
    }
    if skipped_scenarios:
        data["skipped_scenarios"] = skipped_scenarios
    for name, python in pythons.items():
        if any(server.name == name for server in available):
            # The figures are that interpreter's: its Python, its server package, its uvloop.
            other = interpreter_info(python)
            data["machine"].setdefault("interpreters", {})[name] = other
            package = SERVERS_BY_NAME[name].server
            data["machine"]["packages"][package] = other["packages"].get(package)
    if "h2c" in tools:
        data["machine"]["h2load"] = h2load_version(tools["h2c"])
    t0 = time.monotonic()
    failures = 0
    try:
        for i, (scenario, conns, server) in enumerate(cells, 1):
            print(f"[{i}/{len(cells)}] {server.name} {scenario.name} c={conns} …", end=" ", flush=True)
            tool = tools[scenario.protocol]
            interpreter = pythons.get(server.name)
            record = run_cell(scenario, conns, server, settings, server_cpu, wrk_cpu, tool, interpreter)
            data["results"].append(record)
            if record["status"] == "ok":
                m = record["median"]
                if scenario.http2:  # h2load: every request that did not end with a 2xx
                    extra = f", {m['errors']} errors" if m["errors"] else ""
                else:
                    errors = m["connect_errors"] + m["read_errors"] + m["write_errors"]
                    extra = f", {errors} socket errors" if errors else ""
                extra += f", {m['timeouts']} timeouts" if m["timeouts"] else ""
                p99 = m["latency_us"].get("p99")
                extra = (f", p99 {fmt_latency(p99)}" if p99 is not None else "") + extra + cpu_note(record)
                print(f"{fmt_rps(m['rps'])} req/s{extra} ({record['elapsed_s']:.0f} s)", flush=True)
            else:
                failures += 1
                print(f"FAILED: {record['error']}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: writing what was measured so far")
        data["interrupted"] = True
    data["elapsed_s"] = round(time.monotonic() - t0, 1)
    data["machine"]["load_average_end"] = machine_info()["load_average"]
    # Quick (smoke-test) runs never replace results/latest, and results/.gitignore keeps
    # their directories out of commits.
    out = args.output or RESULTS / (f"quick-{stamp}" if args.quick else stamp)
    latest = not (args.no_latest or args.quick or args.output)
    written = write_results(data, out, latest=latest, charts=not args.no_charts)
    print(f"\n{report.render_table(data)}\n")
    if report.has_blazeio_levels(data):
        print(f"In the Blazeio post's shape:\n\n{report.render_blazeio(data)}\n")
    print(f"done in {data['elapsed_s'] / 60:.1f} min; wrote {', '.join(str(p) for p in written)}")
    if failures:
        print(f"{failures} run(s) failed (see above)", file=sys.stderr)
        return 1
    return 0
